// Command introspect-bench generates load against introspectd and the
// baselines it is compared with, serves those baselines, and writes the
// benchmark report. See package [github.com/introspectd/introspectd/bench]
// and bench/run.sh.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/introspectd/introspectd/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
