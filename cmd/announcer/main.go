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
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs // first signal: withdraw the record, revoke the lease, exit 0
		cancel()
		<-sigs // second signal: exit now; the lease expires the record
		os.Exit(1)
	}()
	os.Exit(announcercmd.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
