package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is one problem with the configuration. Key says where to fix it: a
// dotted key path with list indexes (issuers[1].algorithms[0]), an
// environment variable (INTROSPECTD_CACHE_MAX_BYTES) or a flag
// (-cache.max_bytes); Line is the line in the file, or 0.
type Error struct {
	Key  string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.Key != "" && e.Line > 0:
		return fmt.Sprintf("%s (line %d): %s", e.Key, e.Line, e.Msg)
	case e.Key != "":
		return e.Key + ": " + e.Msg
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// origin is where a key's value came from.
type origin struct {
	key  string // key path, variable or flag, as Error.Key
	line int    // file line, or 0
}

// Load builds the effective config: defaults < the YAML file at path (if
// path != "") < environment variables (looked up with lookupEnv, normally
// [os.LookupEnv]) < flags registered by [RegisterFlags] on fs and set on the
// command line (fs may be nil). It then calls [Config.Validate].
//
// An INTROSPECTD_* variable that names no key is an error, except
// [EnvConfig]; Load finds such variables in [os.Environ] and ignores those
// that lookupEnv does not report.
//
// On failure Load returns a nil Config and an [errors.Join] of [*Error]
// values, one for every problem found.
func Load(path string, lookupEnv func(string) (string, bool), fs *flag.FlagSet) (*Config, error) {
	return load(path, lookupEnv, os.Environ, fs, LoadOptions{})
}

// LoadOptions are settings that come from the command line, not the file.
type LoadOptions struct {
	// Dev marks dev mode before validation, so that issuers and clients
	// may be absent.
	Dev bool
}

// LoadWith is Load with options.
func LoadWith(path string, lookupEnv func(string) (string, bool), fs *flag.FlagSet, opts LoadOptions) (*Config, error) {
	return load(path, lookupEnv, os.Environ, fs, opts)
}

func load(path string, lookupEnv func(string) (string, bool), environ func() []string, fs *flag.FlagSet, opts LoadOptions) (*Config, error) {
	c := Default()
	c.Dev = opts.Dev
	c.origin = make(map[string]origin)
	d := &decoder{origin: c.origin}
	if path != "" {
		d.file(c, path)
	}
	if lookupEnv != nil {
		d.env(c, lookupEnv, environ)
	}
	if fs != nil {
		fs.Visit(func(f *flag.Flag) {
			k, ok := keysByFlag()[f.Name]
			if !ok {
				return
			}
			d.setScalar(c, k, f.Value.String(), "-"+f.Name)
		})
	}
	for i := range c.Routes {
		for j, m := range c.Routes[i].Methods {
			c.Routes[i].Methods[j] = strings.ToUpper(m)
		}
	}
	if d.fileFailed {
		// Nothing was decoded: validation would only add noise.
		return nil, errors.Join(d.errs...)
	}
	// Validate even after decode errors, so that all problems are reported at
	// once, but leave out those that follow from a decode error (a misspelt
	// jwks_uri also leaves the issuer without a key source).
	verrs := c.validate(func(path string) bool {
		for f := range d.failed {
			if related(path, f) {
				return true
			}
		}
		return false
	})
	if errs := append(d.errs, verrs...); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

type decoder struct {
	origin     map[string]origin
	errs       []error
	failed     map[string]bool // key paths with decode errors
	fileFailed bool            // the file could not be read or parsed
}

// errorf reports a problem; path is the key path it concerns (for
// [related]), key names it for the user.
func (d *decoder) errorf(key string, line int, format string, args ...any) {
	d.errorAt(key, key, line, format, args...)
}

func (d *decoder) errorAt(path, key string, line int, format string, args ...any) {
	if d.failed == nil {
		d.failed = map[string]bool{}
	}
	d.failed[path] = true
	d.errs = append(d.errs, &Error{Key: key, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// related reports whether key paths a and b are the same or one contains
// the other.
func related(a, b string) bool {
	within := func(x, y string) bool { // x inside y
		return strings.HasPrefix(x, y) && (len(x) == len(y) || x[len(y)] == '.' || x[len(y)] == '[')
	}
	return within(a, b) || within(b, a)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// file decodes the YAML file at path into c and resolves its relative paths.
func (d *decoder) file(c *Config, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		d.fileFailed = true
		d.errorf("", 0, "%v", err)
		return
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err != io.EOF {
			d.yamlError(path, err)
		}
		return // empty file: defaults
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			d.yamlError(path, err)
		} else {
			d.fileFailed = true
			d.errorf(path, extra.Line, "more than one YAML document; want one")
		}
		return
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return
	}
	if root.Kind != yaml.MappingNode {
		d.fileFailed = true
		d.errorf(path, root.Line, "want a mapping of keys at the top level")
		return
	}
	d.node(root, reflect.ValueOf(c).Elem(), "", 0)
	resolvePaths(c, filepath.Dir(path))
}

func (d *decoder) yamlError(path string, err error) {
	d.fileFailed = true
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errorf(path, line, "%s", m[2])
		return
	}
	d.errorf(path, 0, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
}

var durationType = reflect.TypeFor[Duration]()

// maxDepth bounds alias chains; the structs are only a few levels deep.
const maxDepth = 16

// node decodes n into v (addressable), reporting problems under key path.
func (d *decoder) node(n *yaml.Node, v reflect.Value, path string, depth int) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil || depth > maxDepth {
			d.errorf(path, n.Line, "bad alias")
			return
		}
		n, depth = n.Alias, depth+1
	}
	if depth > maxDepth {
		d.errorf(path, n.Line, "nested too deeply")
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // keep the default
	}
	d.origin[path] = origin{key: path, line: n.Line}
	t := v.Type()
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.errorf(path, n.Line, `want a duration string like "30s"`)
			return
		}
		dur, msg := parseDuration(n.Value)
		if msg != "" {
			d.errorf(path, n.Line, "%s", msg)
			return
		}
		v.SetInt(int64(dur))
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(path, n.Line, "want a string, not %s", kindName(n))
			return
		}
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float":
			v.SetString(n.Value)
		default:
			d.errorf(path, n.Line, "want a string, not %s (quote it)", kindName(n))
		}
	case t.Kind() == reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(path, n.Line, "want true or false")
			return
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		if tag := n.ShortTag(); n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!str" && tag != "!!float") {
			if n.Kind == yaml.ScalarNode {
				d.errorf(path, n.Line, "%q is not an integer", n.Value)
			} else {
				d.errorf(path, n.Line, "want an integer, not %s", kindName(n))
			}
			return
		}
		i, msg := parseInt(n.Value, t.Bits())
		if msg != "" {
			d.errorf(path, n.Line, "%s", msg)
			return
		}
		v.SetInt(i)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(path, n.Line, "want a list, not %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, 0, len(n.Content))
		for i, en := range n.Content {
			e := reflect.New(t.Elem()).Elem()
			if t.Elem() == reflect.TypeFor[Issuer]() {
				e.Set(reflect.ValueOf(DefaultIssuer()))
			}
			d.node(en, e, fmt.Sprintf("%s[%d]", path, i), depth+1)
			s = reflect.Append(s, e)
		}
		v.Set(s)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(path, n.Line, "want a mapping, not %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Kind != yaml.ScalarNode {
				d.errorf(path, kn.Line, "want a string key, not %s", kindName(kn))
				continue
			}
			kp := fmt.Sprintf("%s[%q]", path, kn.Value)
			if first, dup := seen[kn.Value]; dup {
				d.errorf(kp, kn.Line, "duplicate key (first on line %d)", first)
				continue
			}
			seen[kn.Value] = kn.Line
			e := reflect.New(t.Elem()).Elem()
			d.node(vn, e, kp, depth+1)
			m.SetMapIndex(reflect.ValueOf(kn.Value), e)
		}
		v.Set(m)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(path, n.Line, "want a mapping, not %s", kindName(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			name := kn.Value
			kp := joinKey(path, name)
			if kn.Kind != yaml.ScalarNode {
				d.errorf(path, kn.Line, "want a key name, not %s", kindName(kn))
				continue
			}
			idx, ok := fields[name]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", name)
				if s := suggest(name, slices.Sorted(mapKeys(fields))); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				d.errorf(kp, kn.Line, "%s", msg)
				continue
			}
			if first, dup := seen[name]; dup {
				d.errorf(kp, kn.Line, "duplicate key (first on line %d)", first)
				continue
			}
			seen[name] = kn.Line
			d.node(vn, v.Field(idx), kp, depth+1)
		}
	default:
		panic("config: unsupported field type " + t.String())
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!bool":
			return "a boolean"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!str":
			return "a string"
		case "!!null":
			return "null"
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an alias"
}

func joinKey(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func mapKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var fieldCache sync.Map // reflect.Type -> map[string]int

// yamlFields maps a struct's YAML key names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}

func parseDuration(s string) (time.Duration, string) {
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Sprintf("%q is not a duration", s)
	}
	return dur, ""
}

func parseInt(s string, bits int) (int64, string) {
	i, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Sprintf("%q is out of range", s)
		}
		return 0, fmt.Sprintf("%q is not an integer", s)
	}
	return i, ""
}

func parseBool(s string) (bool, string) {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, fmt.Sprintf("%q is not a boolean (want true or false)", s)
	}
	return b, ""
}

// resolvePaths makes the file-provided relative paths in c relative to dir.
func resolvePaths(c *Config, dir string) {
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				if _, ok := f.Tag.Lookup("path"); ok && f.Type.Kind() == reflect.String {
					p := v.Field(i).String()
					if p != "" && !filepath.IsAbs(p) {
						v.Field(i).SetString(filepath.Join(dir, p))
					}
					continue
				}
				walk(v.Field(i))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(c).Elem())
}

// scalarKey is a key that can be set by a variable and a flag.
type scalarKey struct {
	path  string // nats.url
	env   string // INTROSPECTD_NATS_URL
	doc   string
	index []int // field index path in Config
	typ   reflect.Type
}

func (k scalarKey) typeName() string {
	switch {
	case k.typ == durationType:
		return "duration"
	case k.typ.Kind() == reflect.Bool:
		return "bool"
	case k.typ.Kind() == reflect.String:
		return "string"
	}
	return "int"
}

var scalarKeys = sync.OnceValue(func() []scalarKey {
	var keys []scalarKey
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			idx := append(slices.Clone(index), i)
			p := joinKey(prefix, name)
			switch {
			case f.Type == durationType, f.Type.Kind() == reflect.String, f.Type.Kind() == reflect.Bool,
				f.Type.Kind() == reflect.Int, f.Type.Kind() == reflect.Int64:
				keys = append(keys, scalarKey{
					path:  p,
					env:   EnvPrefix + strings.ToUpper(strings.ReplaceAll(p, ".", "_")),
					doc:   f.Tag.Get("doc"),
					index: idx,
					typ:   f.Type,
				})
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, p, idx)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return keys
})

var keysByFlag = sync.OnceValue(func() map[string]scalarKey {
	m := map[string]scalarKey{}
	for _, k := range scalarKeys() {
		m[k.path] = k
	}
	return m
})

// fileOnlyEnv maps the would-be variables of list and map keys to the key.
var fileOnlyEnv = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if k := f.Type.Kind(); (k == reflect.Slice || k == reflect.Map) && name != "" && name != "-" {
			m[EnvPrefix+strings.ToUpper(name)] = name
		}
	}
	return m
})

// setScalar parses s as the value of k, from source (a variable or flag).
func (d *decoder) setScalar(c *Config, k scalarKey, s, source string) {
	v := reflect.ValueOf(c).Elem().FieldByIndex(k.index)
	var msg string
	switch {
	case k.typ == durationType:
		var dur time.Duration
		if dur, msg = parseDuration(s); msg == "" {
			v.SetInt(int64(dur))
		} else if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			msg = fmt.Sprintf(`%q is not a duration; want a duration string like "30s"`, s)
		}
	case k.typ.Kind() == reflect.String:
		v.SetString(s)
	case k.typ.Kind() == reflect.Bool:
		var b bool
		if b, msg = parseBool(s); msg == "" {
			v.SetBool(b)
		}
	default:
		var i int64
		if i, msg = parseInt(s, k.typ.Bits()); msg == "" {
			v.SetInt(i)
		}
	}
	if msg != "" {
		d.errorAt(k.path, source, 0, "%s", msg)
		return
	}
	d.origin[k.path] = origin{key: source}
}

func (d *decoder) env(c *Config, lookupEnv func(string) (string, bool), environ func() []string) {
	known := map[string]bool{EnvConfig: true}
	var names []string
	for _, k := range scalarKeys() {
		known[k.env] = true
		names = append(names, k.env)
		if s, ok := lookupEnv(k.env); ok {
			d.setScalar(c, k, s, k.env)
		}
	}
	if environ == nil {
		return
	}
	var unknown []string
	for _, kv := range environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || known[name] || slices.Contains(unknown, name) {
			continue
		}
		if _, ok := lookupEnv(name); ok {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		if key, ok := fileOnlyEnv()[name]; ok {
			d.errorf(name, 0, "%s can only be set in the config file", key)
			continue
		}
		msg := "unknown variable"
		if s := suggest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		d.errorf(name, 0, "%s", msg)
	}
}

// flagValue keeps a flag's text; Load parses it so that errors match the
// file's and the environment's.
type flagValue struct {
	s      string
	isBool bool
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.s
}
func (f *flagValue) Set(s string) error { f.s = s; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// RegisterFlags adds a flag for every scalar key to fs, named by its dotted
// key path (-listen, -nats.url, -revocation.fail_closed, -cache.max_bytes,
// -http.read_timeout, ...), with the key's description, type, variable and
// default in the usage text. The flags hold text only; [Load] parses the
// ones set on the command line (found with [flag.FlagSet.Visit]).
func RegisterFlags(fs *flag.FlagSet) {
	def := reflect.ValueOf(Default()).Elem()
	for _, k := range scalarKeys() {
		v := &flagValue{isBool: k.typ.Kind() == reflect.Bool}
		var dv string
		switch fv := def.FieldByIndex(k.index); {
		case k.typ == durationType:
			dv = Duration(fv.Int()).String()
		case k.typ.Kind() == reflect.Bool:
			if fv.Bool() {
				dv = "true"
			}
		case k.typ.Kind() == reflect.String:
			dv = fv.String()
		default:
			dv = strconv.FormatInt(fv.Int(), 10)
		}
		v.s = dv
		usage := fmt.Sprintf("%s (`%s`, env %s)", k.doc, k.typeName(), k.env)
		if v.isBool {
			usage = fmt.Sprintf("%s (env %s)", k.doc, k.env)
		}
		fs.Var(v, k.path, usage)
	}
}

// suggest returns the candidate closest to s if it is close enough to be a
// likely typo, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(1, min(3, len(s)/3)) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // not a typo; keep the work bounded
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
