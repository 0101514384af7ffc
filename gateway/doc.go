// Package gateway holds no code: its tests run introspectd's /authz behind
// real gateways (nginx auth_request, Caddy forward_auth, HAProxy with the
// Lua script in testdata) and check the configurations that
// docs/gateways.md gives to users, which are rendered from testdata.
//
// The gateways come from Debian's packages; gateway/install-deps.sh, run by
// `make test`, installs them. A missing gateway fails the tests.
package gateway
