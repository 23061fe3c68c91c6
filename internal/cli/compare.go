package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
)

// newCompareCmd is "vhd compare A B".
func newCompareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare A B",
		Short: "Compare the contents of two disks of any formats",
		Long: `Compare reads the virtual contents of the disks A and B, whatever their
formats, and prints "identical" or the offset of the first byte that
differs. Ranges that both disks hold no data for are not read.

Like cmp, the exit status is 0 when identical and 1 when different.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := vhd.Open(args[0], &vhd.OpenOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			defer a.Close()
			b, err := vhd.Open(args[1], &vhd.OpenOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			defer b.Close()
			diff, err := vhd.Compare(cmd.Context(), a, b)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case diff == nil:
				fmt.Fprintln(out, "identical")
				return nil
			case diff.SizeA != diff.SizeB && diff.Offset == min(diff.SizeA, diff.SizeB):
				fmt.Fprintf(out, "differ at offset %d: sizes %d and %d\n",
					diff.Offset, diff.SizeA, diff.SizeB)
			default:
				fmt.Fprintf(out, "differ at offset %d\n", diff.Offset)
			}
			return errFound
		},
	}
}
