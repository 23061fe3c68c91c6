package vhd

import (
	"fmt"
	"os"

	"github.com/vhdkit/vhd/internal/attach"
)

// init makes any program that imports this package able to serve an
// attached disk: [AttachVirtualDisk] starts the program again
// (/proc/self/exe) with attach.ServeEnv set, and this hook then serves
// the disk through FUSE until it is detached, and exits. A program
// started without that variable is not affected.
func init() {
	dir := os.Getenv(attach.ServeEnv)
	if dir == "" {
		return
	}
	err := attach.Serve(dir, func(path string, readOnly bool) (attach.Image, error) {
		return Open(path, winioOpenOptions(readOnly))
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vhd: serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
