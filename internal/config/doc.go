// Package config loads, validates and prints the introspectd configuration.
//
// The effective configuration is built in layers, each overriding the one
// before it:
//
//  1. defaults ([Default], and [DefaultIssuer] for every issuer),
//  2. the YAML file,
//  3. environment variables INTROSPECTD_<KEY>,
//  4. command-line flags -<key> registered by [RegisterFlags].
//
// Every scalar key (string, number, boolean, duration) can be set by all
// three sources. The key's environment variable is [EnvPrefix] followed by the
// dotted key path in upper case with dots replaced by "_"
// (nats.url → INTROSPECTD_NATS_URL), and its flag is the dotted key path
// (-nats.url). Lists and maps (issuers, clients, routes, claims_headers,
// and the lists inside them) can only be set in the file.
//
// Durations are strings such as "30s" or "1h30m"; a bare number is rejected
// because "30" could mean seconds or nanoseconds. A YAML null (an empty
// value) leaves the key at its default.
//
// Relative paths in the file (jwks_file, hmac_secret_file, nats.creds_file,
// nats.nkey_seed_file, nats.ca_file, nats.cert_file, nats.key_file,
// nats.data_dir, tls.cert_file, tls.key_file) are relative to the file's
// folder; relative paths from the environment or a flag are relative to the
// working directory.
//
// [Load] reports every problem it finds, not only the first, as an
// [errors.Join] of [*Error] values that name the key (the dotted path with
// list indexes, the environment variable or the flag) and, for the file,
// the line.
package config
