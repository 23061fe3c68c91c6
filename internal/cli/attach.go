package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
)

func init() { extraCommands = append(extraCommands, newAttachCmd) }

// newAttachCmd is "vhd attach FILE [--read-only]".
func newAttachCmd() *cobra.Command {
	var readOnly bool
	c := &cobra.Command{
		Use:   "attach FILE",
		Short: "Attach a disk as a block device until it is detached",
		Long: `Attach makes the disk in FILE a block device and prints the device's
path. The attach lasts after the command returns, until "vhd detach".

On Linux the device is a loop device (root is needed). Raw images and
fixed VHDs are looped directly; other disks are served through FUSE by a
background "vhd" process that syncs and closes the disk on detach. On
Windows the disk is attached by VirtDisk and the device is a
\\.\PhysicalDriveN path.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dev, err := attachDisk(args[0], readOnly)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), dev)
			return nil
		},
	}
	c.Flags().BoolVar(&readOnly, "read-only", false, "attach read-only: writes to the device fail")
	return c
}

// attachDisk attaches path permanently and returns its device.
func attachDisk(path string, readOnly bool) (string, error) {
	h, err := vhd.OpenVirtualDisk(path, vhd.VirtualDiskAccessNone, vhd.OpenVirtualDiskFlagNone)
	if err != nil {
		return "", err
	}
	defer vhd.CloseHandle(h) //nolint:errcheck // permanent attach: closing ends nothing
	flags := vhd.AttachVirtualDiskFlagPermanentLifetime
	if readOnly {
		flags |= vhd.AttachVirtualDiskFlagReadOnly
	}
	p := vhd.AttachVirtualDiskParameters{Version: 2}
	if err := vhd.AttachVirtualDisk(h, flags, &p); err != nil {
		return "", err
	}
	return vhd.GetVirtualDiskPhysicalPath(h)
}
