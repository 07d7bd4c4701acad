// Command announcer keeps a container's host:port in SkyDNS (etcd v3 + CoreDNS) while the
// container is up. runit runs it next to each container; see `announcer --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rundock/rundock/internal/announcercmd"
)

func main() {
	// SIGUSR1 first: `sv 1` must never kill the announcer (Go's default for it).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	reload := make(chan struct{}, 1)
	go func() {
		for range usr1 { // re-read the state files; signals in a burst count once
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs // first signal: withdraw the record, revoke the lease, exit 0
		cancel()
		<-sigs // second signal: exit now; the lease expires the record
		os.Exit(1)
	}()
	os.Exit(announcercmd.ExecuteReload(ctx, os.Args[1:], os.Stdout, os.Stderr, reload))
}
