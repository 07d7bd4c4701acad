// Command rundock renders and applies runit service trees for Docker containers. Run with
// an existing file as its only argument, it is the Ansible binary module.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rundock/rundock/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	if cli.IsModuleInvocation(os.Args[1:]) {
		os.Exit(cli.RunModule(ctx, os.Args[1], os.Stdout))
	}
	if err := cli.Execute(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rundock:", err)
		os.Exit(1)
	}
}
