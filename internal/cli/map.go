package cli

import (
	"bufio"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
)

// mapWindow is how much of the disk one Map call covers, so that the
// map of a huge disk streams out.
const mapWindow = 1 << 30

// newMapCmd is "vhd map FILE [--json]".
func newMapCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "map FILE",
		Short: "Print the allocation map: data, zero and unallocated extents",
		Long: `Map prints the extents of the disk in FILE in order: virtual offset,
length, state (data, zero or unallocated), the offset in the file that
holds the data (-1 for none) and the depth in the parent chain of that
file (0 the disk itself).

--json prints a JSON array of objects with the keys offset, length,
state, file_offset and depth.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := vhd.Open(args[0], &vhd.OpenOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			defer d.Close()
			w := bufio.NewWriter(cmd.OutOrStdout())
			first := true
			emit := func(e vhd.Extent) error {
				if asJSON {
					b, err := json.Marshal(e)
					if err != nil {
						return err
					}
					sep := ",\n  "
					if first {
						sep = "[\n  "
					}
					w.WriteString(sep)
					w.Write(b)
				} else {
					if first {
						fmt.Fprintf(w, "%14s %14s %-11s %14s %5s\n",
							"offset", "length", "state", "file_offset", "depth")
					}
					fmt.Fprintf(w, "%14d %14d %-11s %14d %5d\n",
						e.Offset, e.Length, e.State, e.FileOffset, e.Depth)
				}
				first = false
				return nil
			}
			if err := walkExtents(d, emit); err != nil {
				return err
			}
			if asJSON {
				if first {
					w.WriteString("[")
				}
				w.WriteString("\n]\n")
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// walkExtents maps d window by window and calls emit for each extent,
// joining runs that continue across windows.
func walkExtents(d vhd.Disk, emit func(vhd.Extent) error) error {
	var pend vhd.Extent
	have := false
	size := d.Size()
	for off := int64(0); off < size; off += mapWindow {
		ext, err := d.Map(off, min(mapWindow, size-off))
		if err != nil {
			return err
		}
		for _, e := range ext {
			if have && continues(pend, e) {
				pend.Length += e.Length
				continue
			}
			if have {
				if err := emit(pend); err != nil {
					return err
				}
			}
			pend, have = e, true
		}
	}
	if have {
		return emit(pend)
	}
	return nil
}

// continues reports whether e extends p: same state and depth, and the
// file bytes (if any) follow on.
func continues(p, e vhd.Extent) bool {
	if p.End() != e.Offset || p.State != e.State || p.Depth != e.Depth {
		return false
	}
	if p.FileOffset < 0 || e.FileOffset < 0 {
		return p.FileOffset == e.FileOffset
	}
	return p.FileOffset+p.Length == e.FileOffset
}
