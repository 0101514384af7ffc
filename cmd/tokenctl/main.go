// Command tokenctl is the operator's CLI for introspectd: it makes signing
// keys, mints tokens for development and tests, asks a running node about a
// token and publishes revocation events.
//
// Exit status: 0 on success, 1 on a runtime failure, 2 on bad usage, and 3
// when "tokenctl introspect" is told that the token is not active.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitInactive = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// env is what a command reads and writes besides its flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	getenv         func(string) string
}

// command is one subcommand of tokenctl.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

var commands = []command{
	{"keys", "make a signing key pair: a private JWK and a public JWKS", runKeys},
	{"mint", "mint a signed JWT from a private JWK, or fetch one from 'introspectd -dev'", runMint},
	{"introspect", "ask an introspectd node whether a token is active (RFC 7662)", runIntrospect},
	{"revoke", "publish revocation events (token, jti, sub, client) to NATS JetStream", runRevoke},
}

const rootUsage = `tokenctl is the operator's CLI for introspectd.

Usage:
  tokenctl <command> [flags]

Commands:
%s
Run 'tokenctl <command> -h' for the flags of a command, with examples.

Exit status: 0 success, 1 failure (I/O, network, server errors), 2 bad usage,
3 token not active ('tokenctl introspect' only).
`

func printRootUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, rootUsage, b.String())
}

// run is main without the process: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now, getenv: os.Getenv}
	if len(args) == 0 {
		printRootUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printRootUsage(stdout)
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		// The argument may be anything, even a token pasted in the wrong
		// place, so it is not echoed.
		fmt.Fprintf(stderr, "tokenctl: unknown command; want one of %s\nRun 'tokenctl -h' for usage.\n", commandNames())
		return exitUsage
	}
	err := cmd.run(e, args[1:])
	var uerr *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errInactive):
		return exitInactive
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "tokenctl %s: %v\nRun 'tokenctl %s -h' for usage.\n", cmd.name, err, cmd.name)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "tokenctl %s: %v\n", cmd.name, err)
		return exitFailure
	}
}

func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// usageError is bad usage: a missing, malformed or conflicting flag. run
// prints it with a pointer to -h and exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// errInactive makes run exit with status 3; the answer is already printed.
var errInactive = errors.New("token is not active")

// flags is a command's flag set with its help text.
type flags struct {
	*flag.FlagSet
	name     string
	synopsis string
	doc      string
	examples string
}

func newFlags(name, synopsis, doc, examples string) *flags {
	fs := flag.NewFlagSet("tokenctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned and printed by run
	fs.Usage = func() {}
	return &flags{FlagSet: fs, name: name, synopsis: synopsis, doc: doc, examples: examples}
}

// parse parses args. On -h it prints the help to stdout and returns
// [flag.ErrHelp]; other errors are usage errors. Positional arguments are
// refused without echoing them: a token pasted there must not be printed.
func (f *flags) parse(e *env, args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.help(e.stdout)
			return err
		}
		return &usageError{msg: err.Error()}
	}
	if f.NArg() > 0 {
		return usagef("unexpected argument after the flags (%d of them); every input is a flag", f.NArg())
	}
	return nil
}

func (f *flags) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: tokenctl %s %s\n\n%s\nFlags:\n", f.name, f.synopsis, strings.TrimSpace(f.doc)+"\n")
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
	if f.examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s", f.examples)
	}
}

// set returns the names of the flags given on the command line.
func (f *flags) set() map[string]bool {
	m := make(map[string]bool)
	f.Visit(func(fl *flag.Flag) { m[fl.Name] = true })
	return m
}

// only fails when a flag outside allowed was given; why says which mode
// rules it out ("with -jti").
func (f *flags) only(set map[string]bool, why string, allowed ...string) error {
	ok := make(map[string]bool, len(allowed))
	for _, a := range allowed {
		ok[a] = true
	}
	var bad []string
	for name := range set {
		if !ok[name] {
			bad = append(bad, "-"+name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return usagef("%s cannot be used %s", strings.Join(bad, ", "), why)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
