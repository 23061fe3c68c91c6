package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
)

// newInfoCmd is "vhd info FILE [--json]".
func newInfoCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "info FILE",
		Short: "Describe a disk: format, type, sizes, identifiers, parents",
		Long: `Info prints what the disk in FILE is: format, type, virtual size, block
and sector sizes, identifiers, allocated bytes, the format's own fields
(log state, creator, geometry...) and its parent chain.

The disk is opened read-only; a VHDX with a dirty log is replayed in
memory, not on disk. --json prints the same as one JSON object whose
keys are stable.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := vhd.Open(args[0], &vhd.OpenOptions{ReadOnly: true})
			var chainErr error
			if errors.Is(err, vhd.ErrParentNotFound) || errors.Is(err, vhd.ErrParentMismatch) {
				// Describe the child alone, then fail with the reason.
				chainErr = err
				d, err = vhd.Open(args[0], &vhd.OpenOptions{ReadOnly: true,
					Parent: vhd.ParentPolicy{Skip: true}})
			}
			if err != nil {
				return err
			}
			defer d.Close()
			info := d.Info()
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), info)
			} else {
				err = writeInfo(cmd.OutOrStdout(), &info)
			}
			if err == nil && chainErr != nil {
				err = fmt.Errorf("parent chain broken (shown above: the "+
					"disk alone): %w", chainErr)
			}
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// writeJSON prints v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeInfo prints info as aligned "key: value" lines, then each parent
// as a block of its own after a blank line.
func writeInfo(w io.Writer, info *vhd.Info) error {
	var b strings.Builder
	for depth := 0; info != nil; depth++ {
		if depth > 0 {
			b.WriteByte('\n')
		}
		writeFields(&b, infoFields(info, depth))
		info = info.Parent
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// infoFields lists the lines of one disk of the chain.
func infoFields(info *vhd.Info, depth int) vhd.Fields {
	var fs vhd.Fields
	add := func(k string, v any) { fs = append(fs, vhd.Field{Key: k, Value: v}) }
	if depth > 0 {
		add("parent", depth)
	}
	add("path", info.Path)
	add("format", info.Format)
	add("type", info.Type)
	add("virtual size", sizeText(info.VirtualSize))
	add("file size", sizeText(info.FileSize))
	if info.BlockSize != 0 {
		add("block size", sizeText(int64(info.BlockSize)))
	}
	add("logical sector size", info.LogicalSectorSize)
	add("physical sector size", info.PhysicalSectorSize)
	add("allocated", sizeText(info.AllocatedBytes))
	if info.ID != "" {
		add("id", info.ID)
	}
	for _, f := range info.Details {
		add(f.Key, f.Value)
	}
	if info.Parent != nil {
		add("parent path", info.Parent.Path)
	}
	return fs
}

// sizeText is "N (human)" or "0".
func sizeText(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%d (%s)", n, humanSize(n))
}

// writeFields writes aligned "key: value" lines.
func writeFields(b *strings.Builder, fs vhd.Fields) {
	width := 0
	for _, f := range fs {
		width = max(width, len(f.Key))
	}
	for _, f := range fs {
		fmt.Fprintf(b, "%-*s %s\n", width+1, f.Key+":", valueText(f.Value))
	}
}

// valueText formats a detail value: scalars as text, anything else as
// compact JSON.
func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32,
		uint64, float32, float64:
		return fmt.Sprint(v)
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
