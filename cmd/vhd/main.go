// Command vhd creates, inspects, converts and checks VHD, VHDX and raw
// disk images. Run "vhd --help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vhdkit/vhd/internal/cli"
)

func main() {
	// An interrupt cancels the context, so a conversion removes its
	// partial output before the command exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
