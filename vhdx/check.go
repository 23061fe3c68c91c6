package vhdx

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Check checks f against every VHDX rule of FORMATS.md 5 and returns one
// finding per broken rule, with its file offset. It continues past a
// finding wherever the later structures can still be located. It never
// writes f; a dirty log is replayed in memory. The error is non-nil only
// when the check cannot run (an I/O error).
func Check(f vdisk.File, path string, opts *vdisk.OpenOptions) ([]vdisk.Finding, error) {
	c := &checker{d: &Disk{f: f, r: f, path: path, readOnly: true, logState: "clean"}}
	err := c.run(opts)
	return c.findings, err
}

type checker struct {
	d        *Disk
	findings []vdisk.Finding
}

// add records err as a finding when it is a content error and returns
// nil; other errors (I/O) are returned.
func (c *checker) add(sev vdisk.Severity, err error) error {
	var ce *vdisk.CorruptError
	switch {
	case errors.As(err, &ce):
		c.findings = append(c.findings, vdisk.Finding{Severity: sev,
			Structure: ce.Structure, Offset: ce.Offset, Rule: ruleID(ce), Message: ce.Error()})
	case errors.Is(err, errors.ErrUnsupported):
		c.findings = append(c.findings, vdisk.Finding{Severity: sev,
			Structure: "file", Offset: -1, Rule: "vhdx.unsupported", Message: err.Error()})
	case errors.Is(err, vdisk.ErrParentNotFound), errors.Is(err, vdisk.ErrParentMismatch):
		c.findings = append(c.findings, vdisk.Finding{Severity: sev,
			Structure: "parent locator", Offset: -1, Rule: "vhdx.parent", Message: err.Error()})
	default:
		return err
	}
	return nil
}

// note records a finding that is not an error value.
func (c *checker) note(sev vdisk.Severity, structure string, off int64, rule, msg string) {
	c.findings = append(c.findings, vdisk.Finding{Severity: sev,
		Structure: structure, Offset: off, Rule: rule, Message: msg})
}

// ruleID builds a stable rule id such as "vhdx.header_1.checksum".
func ruleID(ce *vdisk.CorruptError) string {
	s := "vhdx." + slug(ce.Structure)
	if ce.Field != "" {
		s += "." + slug(ce.Field)
	}
	return s
}

func slug(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			if i > 0 && s[i-1] >= 'a' && s[i-1] <= 'z' {
				b.WriteByte('_')
			}
			b.WriteRune(r + 'a' - 'A')
		case r == ' ' || r == '-':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// run performs the checks in file order; each step stops the run only
// when the next structures cannot be found without it.
func (c *checker) run(opts *vdisk.OpenOptions) error {
	d := c.d
	const E = vdisk.SeverityError
	size, err := d.f.Size()
	if err != nil {
		return err
	}
	d.fileSize = size
	if size < headerSectionSize {
		return c.add(E, corrupt("file", "", 0, "file is %d bytes, smaller than the 1 MiB header section", size))
	}
	hs := make([]byte, regionTable2Offset+regionTableSize)
	if _, err := d.f.ReadAt(hs, 0); err != nil {
		return err
	}
	if d.ident, err = decodeFileIdentifier(hs[:520]); err != nil {
		if err := c.add(E, err); err != nil {
			return err
		}
		d.ident = &FileIdentifier{}
	}

	// Headers: each slot on its own, then the choice.
	b1, b2 := hs[header1Offset:][:headerSize], hs[header2Offset:][:headerSize]
	_, err1 := decodeHeader(b1, header1Offset)
	_, err2 := decodeHeader(b2, header2Offset)
	h, slot, err := chooseHeader(b1, b2)
	if err != nil {
		for _, e := range []error{err1, err2} {
			if e != nil {
				if err := c.add(E, e); err != nil {
					return err
				}
			}
		}
		return c.add(E, err)
	}
	for _, e := range []error{err1, err2} {
		if e != nil {
			if err := c.add(vdisk.SeverityWarning, e); err != nil {
				return err
			}
		}
	}
	if err := h.validate(slot, size); err != nil {
		return c.add(E, err)
	}
	d.hdr, d.hdrSlot = *h, slot

	// Log: overlay the replayed view.
	if !h.LogGUID.IsZero() {
		if err := d.handleLog(); err != nil {
			if err := c.add(E, err); err != nil {
				return err
			}
			c.note(E, "log", int64(h.LogOffset), "vhdx.log.replay", "log guid set but the log cannot be replayed; checking without it")
		} else {
			c.note(vdisk.SeverityWarning, "log", int64(h.LogOffset), "vhdx.log.dirty", "the log holds updates that need replay (checked as replayed)")
			if _, err := d.r.ReadAt(hs[regionTable1Offset:], regionTable1Offset); err != nil {
				return err
			}
		}
	}

	// Region tables: both copies.
	rtb1, rtb2 := hs[regionTable1Offset:][:regionTableSize], hs[regionTable2Offset:][:regionTableSize]
	_, rerr1 := decodeRegionTable(rtb1, regionTable1Offset)
	_, rerr2 := decodeRegionTable(rtb2, regionTable2Offset)
	for _, e := range []error{rerr1, rerr2} {
		if e != nil {
			if err := c.add(E, e); err != nil {
				return err
			}
		}
	}
	if rerr1 == nil && rerr2 == nil && !bytes.Equal(rtb1, rtb2) {
		c.note(vdisk.SeverityWarning, "region table 2", regionTable2Offset, "vhdx.region_table.copies_differ", "the two region table copies differ")
	}
	if err := d.loadRegions(hs); err != nil {
		if rerr1 != nil && rerr2 != nil {
			return nil // already reported per copy
		}
		return c.add(E, err)
	}
	if err := d.loadMetadata(); err != nil {
		return c.add(E, err)
	}
	return c.checkBAT(opts)
}

// checkBAT checks every BAT entry and the placement of present blocks.
func (c *checker) checkBAT(opts *vdisk.OpenOptions) error {
	d := c.d
	const E = vdisk.SeverityError
	off := int64(d.batRegion.FileOffset)
	if d.geo.batBytes() > int64(d.batRegion.Length) {
		return c.add(E, corrupt("BAT", "Length", off, "region of %d bytes cannot hold %d entries", d.batRegion.Length, d.geo.totalEntries))
	}
	b := make([]byte, d.geo.batBytes())
	if err := readFull(d.r, b, off, "BAT"); err != nil {
		return c.add(E, err)
	}
	d.bat = make([]batEntry, d.geo.totalEntries)
	var notPresent, firstNotPresent int64 // fixed-disk blocks
	for i := range d.bat {
		e := batEntry(le.Uint64(b[8*i:]))
		idx := int64(i)
		if err := checkEntryState(e, idx, &d.geo, d.typ, off+8*idx); err != nil {
			if err := c.add(E, err); err != nil {
				return err
			}
			continue // leave the entry not present
		}
		if s := e.state(); e.offset() != 0 && (s == BlockNotPresent || s == BlockZero) && !d.geo.isBitmapIndex(idx) {
			c.note(vdisk.SeverityWarning, "BAT", off+8*idx, "vhdx.bat.reserved_offset",
				"entry "+strconv.FormatInt(idx, 10)+": state "+s.String()+" with a non-zero FileOffsetMB (Hyper-V rejects this)")
		}
		if d.typ == vdisk.TypeFixed && !d.geo.isBitmapIndex(idx) && e.state() != BlockFullyPresent {
			if notPresent == 0 {
				firstNotPresent = idx
			}
			notPresent++
		}
		d.bat[i] = e
	}
	if notPresent > 0 {
		// qemu-img makes fixed disks this way (blocks ZERO, space
		// allocated); one finding for all of them.
		c.note(vdisk.SeverityWarning, "BAT", off+8*firstNotPresent, "vhdx.bat.fixed_not_present",
			fmt.Sprintf("%d payload blocks of a fixed disk are not FULLY_PRESENT "+
				"(first: entry %d, %s)", notPresent, firstNotPresent,
				batEntry(le.Uint64(b[8*firstNotPresent:])).state()))
	}
	for _, err := range d.checkBlocks() {
		if err := c.add(E, err); err != nil {
			return err
		}
	}
	if d.meta.HasParent {
		o := vdisk.OpenOptions{}
		if opts != nil {
			o = *opts
		}
		o.ReadOnly = true
		// A chain that cannot be opened makes the disk unreadable: an
		// error, as for VHD (vhd1 check), though this file's own
		// structures may be sound.
		if err := d.openParents(&o, 0); err != nil {
			if err := c.add(vdisk.SeverityError, err); err != nil {
				return err
			}
		} else if d.parent != nil { // nil when opts ask to skip it
			d.parent.Close()
		}
	}
	return nil
}
