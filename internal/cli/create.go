package cli

import (
	"fmt"
	"math"

	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
)

// newCreateCmd is "vhd create FILE --size SIZE ...".
func newCreateCmd() *cobra.Command {
	var (
		size, blockSize           sizeFlag
		typ, parent, format       string
		logicalSize, physicalSize uint32
	)
	c := &cobra.Command{
		Use:   "create FILE",
		Short: "Create a new disk",
		Long: `Create makes a new disk in FILE, which must not exist.

The format comes from FILE's extension (.vhdx, .avhdx: VHDX; .vhd, .avhd:
VHD; .img, .raw, .bin: raw) unless --format says. VHD and VHDX disks are
dynamic unless --type says; --parent makes a differencing disk, whose
size is its parent's. Sizes take bytes or a binary K, M, G or T suffix.`,
		Example: `  vhd create disk.vhdx --size 10G
  vhd create fixed.vhd --size 100M --type fixed
  vhd create child.vhdx --parent disk.vhdx`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &vhd.CreateOptions{
				Size:               size.n,
				Parent:             parent,
				LogicalSectorSize:  logicalSize,
				PhysicalSectorSize: physicalSize,
			}
			if blockSize.n > math.MaxUint32 {
				return usageError{fmt.Errorf("block size %d too large", blockSize.n), cmd}
			}
			opts.BlockSize = uint32(blockSize.n)
			var err error
			if typ != "" {
				if opts.Type, err = vhd.ParseType(typ); err != nil {
					return usageError{err, cmd}
				}
			} else if parent != "" {
				opts.Type = vhd.TypeDifferencing
			}
			switch {
			case opts.Type == vhd.TypeDifferencing && parent == "":
				return usageError{fmt.Errorf("a differencing disk needs --parent"), cmd}
			case opts.Type != vhd.TypeDifferencing && parent != "":
				return usageError{fmt.Errorf("--parent needs --type differencing"), cmd}
			case opts.Type != vhd.TypeDifferencing && !cmd.Flags().Changed("size"):
				return usageError{fmt.Errorf("--size is required"), cmd}
			case opts.Type != vhd.TypeDifferencing && size.n <= 0:
				return usageError{fmt.Errorf("--size must be more than 0"), cmd}
			}
			f, err := formatFlag(format)
			if err != nil {
				return usageError{err, cmd}
			}
			d, err := vhd.Create(args[0], f, opts)
			if err != nil {
				return err
			}
			info := d.Info()
			if err := d.Close(); err != nil {
				return fmt.Errorf("create %s: %w", args[0], err)
			}
			logger(cmd).Info("created", "path", args[0], "format", info.Format,
				"type", info.Type, "size", info.VirtualSize)
			return nil
		},
	}
	fl := c.Flags()
	fl.Var(&size, "size", "virtual size (e.g. 10G)")
	fl.StringVar(&typ, "type", "", "dynamic, fixed or differencing (default dynamic)")
	fl.StringVar(&parent, "parent", "", "parent of a differencing disk")
	fl.Var(&blockSize, "block-size", "block size (VHDX default 32M, VHD 2M)")
	fl.Uint32Var(&logicalSize, "logical-sector-size", 0, "512 or 4096 (VHDX)")
	fl.Uint32Var(&physicalSize, "physical-sector-size", 0, "512 or 4096")
	fl.StringVar(&format, "format", "", "vhdx, vhd or raw (default from the extension)")
	return c
}

// formatFlag parses a --format value; empty means none given.
func formatFlag(s string) (vhd.Format, error) {
	if s == "" {
		return vhd.FormatUnknown, nil
	}
	return vhd.ParseFormat(s)
}
