package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
	"github.com/vhdkit/vhd/internal/vdisk"
	"github.com/vhdkit/vhd/vhd1"
)

// checkReport is the result of "vhd check", also its JSON form.
type checkReport struct {
	Path     string        `json:"path"`
	Format   vhd.Format    `json:"format"`
	Findings []vhd.Finding `json:"findings"`
	Errors   int           `json:"errors"`
	Warnings int           `json:"warnings"`
}

// newCheckCmd is "vhd check FILE [--json] [--azure]".
func newCheckCmd() *cobra.Command {
	var asJSON, azure bool
	c := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a disk against its format's rules",
		Long: `Check reports every rule of its format that the disk in FILE breaks,
each with the file offset of the structure at fault, then a count ("N
errors found") or "OK". The file is opened read-only and never written;
parents are not checked.

--azure adds Azure's upload rules (fixed VHD, size a whole number of MiB
in range, valid footer, creator fields).

The exit status is 1 when an error is found, 0 when there are only
warnings or nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := check(args[0], azure)
			if err != nil {
				return err
			}
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), r)
			} else {
				err = writeCheck(cmd.OutOrStdout(), r)
			}
			if err == nil && r.Errors > 0 {
				err = errFound
			}
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVar(&azure, "azure", false, "also check Azure's rules for uploads")
	return c
}

func check(path string, azure bool) (*checkReport, error) {
	f, err := vdisk.OpenOSFile(path, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	format, err := vhd.DetectFile(path)
	if err != nil {
		return nil, err
	}
	findings, err := vhd.CheckFile(f, path, &vhd.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	if azure {
		if format != vhd.FormatVHD {
			findings = append(findings, vhd.Finding{
				Severity:  vhd.SeverityError,
				Structure: "file",
				Offset:    -1,
				Rule:      "azure.format",
				Message:   fmt.Sprintf("Azure accepts only fixed VHD, this is %v", format),
			})
		} else {
			az, err := vhd1.CheckAzure(f, path)
			if err != nil {
				return nil, err
			}
			findings = append(findings, az...)
		}
	}
	r := &checkReport{Path: path, Format: format, Findings: findings}
	if r.Findings == nil {
		r.Findings = []vhd.Finding{}
	}
	for _, f := range findings {
		switch f.Severity {
		case vhd.SeverityError:
			r.Errors++
		case vhd.SeverityWarning:
			r.Warnings++
		}
	}
	return r, nil
}

// writeCheck prints one line per finding, then the count.
func writeCheck(w io.Writer, r *checkReport) error {
	var b strings.Builder
	for _, f := range r.Findings {
		where := f.Structure
		if f.Offset >= 0 {
			where = fmt.Sprintf("%s at 0x%x", f.Structure, f.Offset)
		}
		fmt.Fprintf(&b, "%s: %s: %s [%s]\n", f.Severity, where, f.Message, f.Rule)
	}
	switch {
	case r.Errors == 1:
		b.WriteString("1 error found\n")
	case r.Errors > 1:
		fmt.Fprintf(&b, "%d errors found\n", r.Errors)
	case r.Warnings == 1:
		b.WriteString("OK (1 warning)\n")
	case r.Warnings > 1:
		fmt.Fprintf(&b, "OK (%d warnings)\n", r.Warnings)
	default:
		b.WriteString("OK\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
