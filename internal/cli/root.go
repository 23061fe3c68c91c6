// Package cli implements the vhd command. [Run] is the whole command; the
// main package only calls it, so tests run it with buffers.
//
// Exit status: 0 on success, 1 when check finds an error or compare
// finds a difference, 2 for usage errors and every other failure.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses of [Run].
const (
	ExitOK      = 0 // success
	ExitFound   = 1 // check found errors, compare found a difference
	ExitFailure = 2 // usage error or any other failure
)

// extraCommands are added to the root command. Files of this package
// that provide commands register their constructor from init, so that
// they need not edit root.go.
var extraCommands []func() *cobra.Command

// errFound reports a result that is not an error of the command but
// sets exit status 1 (findings, differences); its text is already
// printed.
var errFound = errors.New("found")

// Run runs the vhd command with args (without the program name), writing
// data to stdout and diagnostics to stderr, and returns the exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errFound):
		return ExitFound
	}
	// The library's own messages may start with the package name,
	// which is also the program's.
	msg := strings.TrimPrefix(err.Error(), "vhd: ")
	fmt.Fprintf(stderr, "vhd: %s\n", msg)
	return ExitFailure
}

// newRoot builds the command tree.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var verbose int
	root := &cobra.Command{
		Use:   "vhd",
		Short: "Create, inspect, convert and check VHD, VHDX and raw disk images",
		Long: `vhd creates, inspects, converts and checks virtual disks in the VHD and
VHDX formats and raw images, without Windows and without qemu.

The format of an existing disk is detected from its content; the format
of a new one comes from its extension (.vhdx, .avhdx, .vhd, .avhd, .img,
.raw, .bin) unless --format says.

Exit status: 0 success; 1 when check finds an error or compare finds a
difference; 2 for usage errors and any other failure.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelWarn - slog.Level(4*verbose)
			h := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
			cmd.SetContext(withLogger(cmd.Context(), slog.New(h)))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().CountVarP(&verbose, "verbose", "v",
		"log more to stderr (repeat for more)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err, c}
	})
	root.AddCommand(newCreateCmd(), newInfoCmd(), newConvertCmd(),
		newCheckCmd(), newCompareCmd(), newMapCmd())
	for _, f := range extraCommands {
		root.AddCommand(f())
	}
	return root
}

// usageError is a command-line mistake; its text points to --help.
type usageError struct {
	err error
	cmd *cobra.Command
}

func (e usageError) Error() string {
	return fmt.Sprintf("%v (see %q)", e.err, e.cmd.CommandPath()+" --help")
}

func (e usageError) Unwrap() error { return e.err }

type loggerKey struct{}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, loggerKey{}, l)
}

// logger returns the command's logger.
func logger(cmd *cobra.Command) *slog.Logger {
	if l, ok := cmd.Context().Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// version is the module version the binary was built from ("devel"
// plus the VCS revision for a build from a checkout).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v += " " + s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				if s.Value == "true" {
					v += "+dirty"
				}
			}
		}
	}
	return v + " " + bi.GoVersion
}
