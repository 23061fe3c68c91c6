package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
)

// newCompareCmd is "vhd compare A B".
func newCompareCmd() *cobra.Command {
	var zeroTail bool
	c := &cobra.Command{
		Use:   "compare A B",
		Short: "Compare the contents of two disks of any formats",
		Long: `Compare reads the virtual contents of the disks A and B, whatever their
formats, and prints "identical" or the offset of the first byte that
differs. Ranges that both disks hold no data for are not read.

Disks of different sizes differ at the shorter one's end, unless
--zero-tail: then the longer one matches if all it holds past that end
reads as zeros (as after convert --azure, or a convert that padded the
size to whole sectors).

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
			if zeroTail && diff != nil && diff.SizeA != diff.SizeB &&
				diff.Offset == min(diff.SizeA, diff.SizeB) {
				longer := a
				if diff.SizeB > diff.SizeA {
					longer = b
				}
				at, err := firstNonZero(cmd.Context(), longer, diff.Offset)
				if err != nil {
					return err
				}
				if at < 0 {
					fmt.Fprintf(out, "identical, and zeros from %d to %d\n",
						diff.Offset, longer.Size())
					return nil
				}
				diff.Offset = at
			}
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
	c.Flags().BoolVar(&zeroTail, "zero-tail", false,
		"disks of different sizes match if the longer one reads as zeros past the shorter one's end")
	return c
}

// firstNonZero returns the offset of the first byte at or after off
// that does not read as zero, or -1. Only data extents are read.
func firstNonZero(ctx context.Context, d vhd.Disk, off int64) (int64, error) {
	size := d.Size()
	exts, err := d.Map(off, size-off)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	for _, e := range exts {
		if e.State != vhd.Data {
			continue
		}
		for pos := e.Offset; pos < e.Offset+e.Length; {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			n := min(int64(len(buf)), e.Offset+e.Length-pos)
			got, err := d.ReadAt(buf[:n], pos)
			if err != nil && (err != io.EOF || int64(got) < n) {
				return 0, fmt.Errorf("read at %d: %w", pos+int64(got), err)
			}
			for i, c := range buf[:n] {
				if c != 0 {
					return pos + int64(i), nil
				}
			}
			pos += n
		}
	}
	return -1, nil
}
