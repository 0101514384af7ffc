package config

import (
	"reflect"
	"strconv"
	"strings"
)

// Key describes one configuration key, for help text and documentation.
type Key struct {
	Path    string // dotted path; list elements as []: issuers[].jwks_file
	Type    string // string, bool, int, duration, list, map or section
	Env     string // environment variable, "" for file-only keys
	Flag    string // flag name without "-", "" for file-only keys
	Default string // default value as text, "" if none
	Secret  bool   // redacted by [Config.Redacted]
	Doc     string // one-line description
}

// Keys lists every configuration key in file order, sections before their
// keys.
func Keys() []Key {
	var keys []Key
	var walk func(t reflect.Type, def reflect.Value, prefix string, inList bool)
	walk = func(t reflect.Type, def reflect.Value, prefix string, inList bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			_, secret := f.Tag.Lookup("secret")
			k := Key{Path: joinKey(prefix, name), Doc: f.Tag.Get("doc"), Secret: secret}
			var fv reflect.Value
			if def.IsValid() {
				fv = def.Field(i)
			}
			switch {
			case f.Type == durationType:
				k.Type = "duration"
				if fv.IsValid() && fv.Int() != 0 {
					k.Default = Duration(fv.Int()).String()
				}
			case f.Type.Kind() == reflect.String:
				k.Type = "string"
				if fv.IsValid() {
					k.Default = fv.String()
				}
			case f.Type.Kind() == reflect.Bool:
				k.Type = "bool"
				if fv.IsValid() && fv.Bool() {
					k.Default = "true"
				}
			case f.Type.Kind() == reflect.Int, f.Type.Kind() == reflect.Int64:
				k.Type = "int"
				if fv.IsValid() && fv.Int() != 0 {
					k.Default = strconv.FormatInt(fv.Int(), 10)
				}
			case f.Type.Kind() == reflect.Map:
				k.Type = "map"
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				k.Type = "list"
				keys = append(keys, k)
				var ed reflect.Value
				if f.Type.Elem() == reflect.TypeFor[Issuer]() {
					ed = reflect.ValueOf(DefaultIssuer())
				}
				walk(f.Type.Elem(), ed, k.Path+"[]", true)
				continue
			case f.Type.Kind() == reflect.Slice:
				k.Type = "list"
				if fv.IsValid() && fv.Len() > 0 {
					k.Default = strings.Join(fv.Interface().([]string), ", ")
				}
			case f.Type.Kind() == reflect.Struct:
				k.Type = "section"
				keys = append(keys, k)
				walk(f.Type, fv, k.Path, inList)
				continue
			}
			if !inList && k.Type != "list" && k.Type != "map" {
				k.Env = EnvPrefix + strings.ToUpper(strings.ReplaceAll(k.Path, ".", "_"))
				k.Flag = k.Path
			}
			keys = append(keys, k)
		}
	}
	walk(reflect.TypeFor[Config](), reflect.ValueOf(Default()).Elem(), "", false)
	return keys
}
