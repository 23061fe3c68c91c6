package cli

import (
	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
)

func init() { extraCommands = append(extraCommands, newDetachCmd) }

// newDetachCmd is "vhd detach FILE|DEVICE".
func newDetachCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "detach FILE|DEVICE",
		Short: "Detach a disk attached by \"vhd attach\"",
		Long: `Detach ends the attach of the disk in FILE, or of the disk behind
DEVICE (Linux: /dev/loopN), and returns once the disk file has been synced
and closed. A device that is mounted is not detached.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return vhd.DetachVhd(args[0])
		},
	}
}
