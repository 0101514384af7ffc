package introspect

import (
	"bytes"
	"net/url"
	"path"
	"strings"
)

// Route is an /authz rule: requests under PathPrefix (whole path segments)
// with one of Methods (empty: any) need every scope in Scopes.
type Route struct {
	PathPrefix string
	Methods    []string
	Scopes     []string
}

type route struct {
	prefix  []byte
	methods [][]byte
	scopes  []string
	needed  string // the scopes, space separated, for the 403 challenge
}

func compileRoutes(rs []Route) []route {
	out := make([]route, 0, len(rs))
	for _, r := range rs {
		p := strings.TrimSuffix(r.PathPrefix, "/")
		cr := route{prefix: []byte(p), scopes: r.Scopes, needed: strings.Join(r.Scopes, " ")}
		for _, m := range r.Methods {
			cr.methods = append(cr.methods, []byte(strings.ToUpper(m)))
		}
		out = append(out, cr)
	}
	return out
}

// matches reports whether the rule covers method and the clean path p.
// "/admin" covers "/admin" and "/admin/users", not "/administrator".
func (r *route) matches(method, p []byte) bool {
	if !bytes.HasPrefix(p, r.prefix) {
		return false
	}
	if rest := p[len(r.prefix):]; len(rest) > 0 && rest[0] != '/' {
		return false
	}
	if len(r.methods) == 0 {
		return true
	}
	for _, m := range r.methods {
		if bytes.Equal(m, method) {
			return true
		}
	}
	return false
}

// firstRoute returns the first rule that covers the request, or nil.
func firstRoute(rs []route, method, p []byte) *route {
	for i := range rs {
		if rs[i].matches(method, p) {
			return &rs[i]
		}
	}
	return nil
}

// cleanPath returns the path of a request URI as a route must see it:
// without query or fragment, percent-decoded, with dot segments and
// repeated slashes resolved. Otherwise "/%61dmin" or "/x/../admin" would
// slip past a rule for "/admin" while the upstream serves /admin. The
// common, already clean path is returned without allocating.
func cleanPath(uri []byte) ([]byte, bool) {
	if i := bytes.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if len(uri) == 0 {
		return []byte("/"), true
	}
	if uri[0] != '/' {
		// An absolute URI ("http://host/path") is reduced to its path as
		// sent, which is then read like any other: ";params", '\' and
		// percent-escapes included (cleaning u.Path alone let
		// http://h/admin;x/users past an /admin rule).
		u, err := url.Parse(string(uri))
		if err != nil || u.Host == "" || u.Path == "" {
			return nil, false
		}
		uri = []byte(u.EscapedPath())
	}
	if isClean(uri) {
		return uri, true
	}
	dec, err := url.PathUnescape(string(uri))
	if err != nil {
		return nil, false
	}
	// Some upstreams treat '\' as '/', and Java servlet containers drop
	// ";params" from each segment (/admin;x/users is /admin/users to them).
	// Reading the path their way can only make a rule apply where it
	// might not have, never the reverse.
	segs := strings.Split(strings.ReplaceAll(dec, "\\", "/"), "/")
	for i, seg := range segs {
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			segs[i] = seg[:j]
		}
	}
	joined := strings.Join(segs, "/")
	c := path.Clean(joined)
	if strings.HasSuffix(joined, "/") && c != "/" {
		c += "/" // as a clean path keeps it: /admin/ is not /admin to every upstream
	}
	return []byte(c), true
}

func isClean(p []byte) bool {
	if bytes.ContainsAny(p, "%\\;") || bytes.Contains(p, []byte("//")) {
		return false
	}
	for _, seg := range [][]byte{[]byte("/./"), []byte("/../")} {
		if bytes.Contains(p, seg) {
			return false
		}
	}
	return !bytes.HasSuffix(p, []byte("/.")) && !bytes.HasSuffix(p, []byte("/.."))
}
