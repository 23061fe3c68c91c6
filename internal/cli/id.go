package cli

import (
	"fmt"
	"strings"

	"github.com/Microsoft/go-winio/pkg/guid"
	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
)

func init() { extraCommands = append(extraCommands, newIDCmd) }

// newIDCmd is "vhd id FILE [--set GUID]".
func newIDCmd() *cobra.Command {
	var set string
	c := &cobra.Command{
		Use:   "id FILE",
		Short: "Print or set a disk's identifier",
		Long: `Id prints the identifier of the disk in FILE: the VHDX Virtual Disk
ID or the VHD footer's Unique Id. With --set it stores GUID first (the
disk must not be attached) and prints it as read back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("set") {
				g, err := parseGUID(set)
				if err != nil {
					return err
				}
				if err := vhd.SetVirtualDiskIdentifier(args[0], g); err != nil {
					return err
				}
			}
			g, err := vhd.GetVirtualDiskIdentifier(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), g)
			return nil
		},
	}
	c.Flags().StringVar(&set, "set", "", "set the identifier to `GUID` (with or without braces)")
	return c
}

// parseGUID accepts the canonical form, optionally in braces.
func parseGUID(s string) (guid.GUID, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
		t = t[1 : len(t)-1]
	}
	g, err := guid.FromString(t)
	if err != nil {
		return guid.GUID{}, fmt.Errorf("%w: --set %q is not a GUID", vhd.ErrInvalidArgument, s)
	}
	return g, nil
}
