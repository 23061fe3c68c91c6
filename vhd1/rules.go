package vhd1

import (
	"fmt"
	"math/bits"
	"sort"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// This file holds the rules of FORMATS.md section 5 as pure functions
// over decoded structures. Open fails on the first issue of severity
// error; Check reports every issue as a finding.

// issue is one broken rule.
type issue struct {
	sev       vdisk.Severity
	structure string
	field     string
	rule      string
	off       int64
	msg       string
}

func (i issue) err() error {
	return &vdisk.CorruptError{Format: "vhd", Structure: i.structure,
		Field: i.field, Offset: i.off, Reason: i.msg}
}

func (i issue) finding() vdisk.Finding {
	msg := i.msg
	if i.field != "" {
		msg = i.field + ": " + msg
	}
	return vdisk.Finding{Severity: i.sev, Structure: i.structure,
		Offset: i.off, Rule: i.rule, Message: msg}
}

// firstError returns the first issue of severity error as a
// *vdisk.CorruptError, or nil.
func firstError(is []issue) error {
	for _, i := range is {
		if i.sev == vdisk.SeverityError {
			return i.err()
		}
	}
	return nil
}

func corrupt(structure, field string, off int64, format string, args ...any) error {
	return vdisk.Corruptf("vhd", structure, field, off, format, args...)
}

// issues collects issues with a common structure name.
type issues struct {
	structure string
	list      []issue
}

func (is *issues) add(sev vdisk.Severity, rule, field string, off int64, format string, args ...any) {
	is.list = append(is.list, issue{sev, is.structure, field, rule, off,
		fmt.Sprintf(format, args...)})
}

func (is *issues) errorf(rule, field string, off int64, format string, args ...any) {
	is.add(vdisk.SeverityError, rule, field, off, format, args...)
}

func (is *issues) warnf(rule, field string, off int64, format string, args ...any) {
	is.add(vdisk.SeverityWarning, rule, field, off, format, args...)
}

// footerIssues checks a footer found at file offset off on its own
// (FORMATS.md 2.2, 5).
func footerIssues(f *Footer, off int64) []issue {
	is := issues{structure: "footer"}
	if f.Cookie != footerCookie {
		is.errorf("vhd.footer.cookie", "Cookie", off,
			"cookie is %q, want \"conectix\"", f.Cookie[:])
		return is.list
	}
	if want := f.rawChecksum(); f.Checksum != want {
		is.errorf("vhd.footer.checksum", "Checksum", off+footerOffChecksum,
			"checksum 0x%08x, computed 0x%08x", f.Checksum, want)
	}
	if f.FormatVersion>>16 != 1 {
		is.errorf("vhd.footer.version", "File Format Version",
			off+footerOffVersion, "version 0x%08x, want 0x00010000",
			f.FormatVersion)
	} else if f.FormatVersion != Version {
		is.warnf("vhd.footer.version", "File Format Version",
			off+footerOffVersion, "minor version 0x%08x, want 0x00010000",
			f.FormatVersion)
	}
	switch f.DiskType {
	case DiskTypeFixed, DiskTypeDynamic, DiskTypeDifferencing:
	default:
		is.errorf("vhd.footer.disk_type", "Disk Type", off+footerOffDiskType,
			"disk type %d is not fixed (2), dynamic (3) or differencing (4)",
			uint32(f.DiskType))
	}
	if f.CurrentSize%SectorSize != 0 || f.CurrentSize > 1<<62 {
		is.errorf("vhd.footer.current_size", "Current Size",
			off+footerOffCurSize,
			"current size %d is not a multiple of 512 below 2^62",
			f.CurrentSize)
	}
	if f.Features&FeatureReserved == 0 {
		is.warnf("vhd.footer.features", "Features", off+footerOffFeatures,
			"features 0x%08x: reserved bit 0x2 must be set", f.Features)
	}
	if f.DiskType == DiskTypeFixed && !fixedDataOffset(f.DataOffset) {
		is.warnf("vhd.footer.data_offset", "Data Offset",
			off+footerOffDataOffset,
			"fixed disk data offset 0x%x, want all ones", f.DataOffset)
	}
	if f.SavedState != 0 {
		is.warnf("vhd.footer.saved_state", "Saved State", off+84,
			"saved state is set: a virtual machine was saved with this disk")
	}
	return is.list
}

// headerIssues checks a dynamic header found at file offset off on its
// own (FORMATS.md 2.5, 5).
func headerIssues(h *DynamicHeader, off int64) []issue {
	is := issues{structure: "dynamic header"}
	if h.Cookie != headerCookie {
		is.errorf("vhd.header.cookie", "Cookie", off,
			"cookie is %q, want \"cxsparse\"", h.Cookie[:])
		return is.list
	}
	if want := h.rawChecksum(); h.Checksum != want {
		is.errorf("vhd.header.checksum", "Checksum", off+headerOffChecksum,
			"checksum 0x%08x, computed 0x%08x", h.Checksum, want)
	}
	if h.HeaderVersion != Version {
		is.errorf("vhd.header.version", "Header Version",
			off+headerOffVersion, "version 0x%08x, want 0x00010000",
			h.HeaderVersion)
	}
	if h.BlockSize < SectorSize || bits.OnesCount32(h.BlockSize) != 1 {
		is.errorf("vhd.header.block_size", "Block Size",
			off+headerOffBlockSize,
			"block size %d is not a power of two of at least 512",
			h.BlockSize)
	}
	if !fixedDataOffset(h.DataOffset) {
		is.warnf("vhd.header.data_offset", "Data Offset", off+8,
			"data offset 0x%x, want all ones", h.DataOffset)
	}
	return is.list
}

// layout is what the placement rules need to know about a file.
type layout struct {
	fileSize  int64
	end       int64 // where data must end: the end footer, or fileSize
	footerOff int64 // offset of the footer in use
	footer    *Footer
	header    *DynamicHeader // nil for fixed disks or before it is read
}

// sizeIssues checks Current Size against the file (fixed) and the
// position of the dynamic header (dynamic, differencing).
func sizeIssues(l *layout) []issue {
	is := issues{structure: "footer"}
	f := l.footer
	if f.DiskType == DiskTypeFixed {
		if int64(f.CurrentSize) > l.end {
			is.errorf("vhd.fixed.truncated", "Current Size",
				l.footerOff+footerOffCurSize,
				"current size %d but only %d data bytes before the footer",
				f.CurrentSize, l.end)
		} else if int64(f.CurrentSize) < l.end {
			is.warnf("vhd.fixed.extra", "Current Size",
				l.footerOff+footerOffCurSize,
				"%d bytes between the data and the footer belong to no sector",
				l.end-int64(f.CurrentSize))
		}
		return is.list
	}
	do := f.DataOffset
	if do%SectorSize != 0 || do < FooterSize ||
		do > uint64(l.end) || uint64(l.end)-do < HeaderSize {
		is.errorf("vhd.footer.data_offset", "Data Offset",
			l.footerOff+footerOffDataOffset,
			"dynamic header offset 0x%x is not a 512-aligned offset "+
				"inside the file (data ends at 0x%x)", do, l.end)
	}
	if f.CurrentSize > MaxDynamicSize {
		is.warnf("vhd.footer.size_limit", "Current Size",
			l.footerOff+footerOffCurSize,
			"current size %d exceeds the 2040 GiB limit of dynamic disks",
			f.CurrentSize)
	}
	return is.list
}

// batBytes returns the size of the BAT area: Max Table Entries 4-byte
// entries padded to a sector (FORMATS.md 2.7).
func batBytes(h *DynamicHeader) int64 {
	return (int64(h.MaxTableEntries)*4 + SectorSize - 1) / SectorSize * SectorSize
}

// blocksNeeded returns ceil(CurrentSize / BlockSize).
func blocksNeeded(f *Footer, h *DynamicHeader) int64 {
	bs := uint64(h.BlockSize)
	return int64((f.CurrentSize + bs - 1) / bs)
}

// tableIssues checks the BAT's placement and size (FORMATS.md 2.5, 5).
func tableIssues(l *layout) []issue {
	is := issues{structure: "dynamic header"}
	h, f := l.header, l.footer
	hoff := int64(f.DataOffset)
	to := h.TableOffset
	if to%SectorSize != 0 || to < FooterSize || to > uint64(l.end) ||
		uint64(l.end)-to < uint64(batBytes(h)) {
		is.errorf("vhd.header.table_offset", "Table Offset",
			hoff+headerOffTableOffset,
			"BAT of %d entries at 0x%x is not 512-aligned inside the file "+
				"(data ends at 0x%x)", h.MaxTableEntries, to, l.end)
	}
	need := blocksNeeded(f, h)
	switch m := int64(h.MaxTableEntries); {
	case m < need:
		is.errorf("vhd.header.max_table_entries", "Max Table Entries",
			hoff+headerOffMaxEntries,
			"%d entries cannot cover current size %d with %d-byte blocks "+
				"(need %d)", m, f.CurrentSize, h.BlockSize, need)
	case m > need:
		is.warnf("vhd.header.max_table_entries", "Max Table Entries",
			hoff+headerOffMaxEntries,
			"%d entries, but current size needs %d (Azure requires equal)",
			m, need)
	}
	return is.list
}

// region is a range of the file used by one structure or block.
type region struct {
	start, end int64
	name       string
	off        int64 // where the region is recorded (BAT entry offset)
}

// overlapIssues reports regions that share bytes.
func overlapIssues(rs []region) []issue {
	is := issues{structure: "BAT"}
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	var last region
	for i, r := range rs {
		if i > 0 && r.start < last.end {
			is.errorf("vhd.bat.overlap", "", r.off,
				"%s [0x%x, 0x%x) overlaps %s [0x%x, 0x%x)",
				r.name, r.start, r.end, last.name, last.start, last.end)
		}
		if i == 0 || r.end > last.end {
			last = r
		}
	}
	return is.list
}

// metadataRegions returns the file ranges of the footer copy, the
// dynamic header and the BAT.
func metadataRegions(l *layout) []region {
	h, f := l.header, l.footer
	hoff := int64(f.DataOffset)
	return []region{
		{0, FooterSize, "footer copy", 0},
		{hoff, hoff + HeaderSize, "dynamic header", hoff},
		{int64(h.TableOffset), int64(h.TableOffset) + batBytes(h), "BAT",
			int64(h.TableOffset)},
	}
}

// batIssues checks every allocated entry: its block must end at or
// before the end footer and must not overlap another block or the
// metadata in extra (FORMATS.md 2.7, 5).
func batIssues(l *layout, bat []uint32, extra []region) []issue {
	is := issues{structure: "BAT"}
	h := l.header
	span := h.BitmapSize() + int64(h.BlockSize)
	rs := extra
	for i, e := range bat {
		if e == unused {
			continue
		}
		eoff := int64(h.TableOffset) + 4*int64(i)
		start := int64(e) * SectorSize
		if start+span > l.end {
			is.errorf("vhd.bat.past_end", fmt.Sprintf("entry %d", i), eoff,
				"block at 0x%x ends at 0x%x, past the data end 0x%x",
				start, start+span, l.end)
			continue
		}
		rs = append(rs, region{start, start + span,
			fmt.Sprintf("block %d", i), eoff})
	}
	return append(is.list, overlapIssues(rs)...)
}

// locatorIssues checks the parent locator entries of a differencing
// header against the data end (FORMATS.md 2.6).
func locatorIssues(l *layout) []issue {
	var list []issue
	for i := range l.header.ParentLocators {
		list = append(list, locatorEntryIssues(l, i)...)
	}
	return list
}

// locatorEntryIssues checks locator entry i.
func locatorEntryIssues(l *layout, i int) []issue {
	is := issues{structure: "parent locator"}
	loc := l.header.ParentLocators[i]
	if loc.PlatformCode == PlatformNone {
		return nil
	}
	eoff := int64(l.footer.DataOffset) + headerOffLocators +
		int64(i)*locatorSize
	field := fmt.Sprintf("entry %d (%v)", i, loc.PlatformCode)
	space, ok := loc.DataSpaceBytes()
	if !ok {
		is.errorf("vhd.locator.data_space", field, eoff+4,
			"platform data space %d is neither sectors (<512) nor a "+
				"multiple of 512 bytes", loc.PlatformDataSpace)
		return is.list
	}
	if int64(loc.PlatformDataLength) > space {
		is.errorf("vhd.locator.data_length", field, eoff+8,
			"data length %d exceeds data space %d",
			loc.PlatformDataLength, space)
	}
	o := loc.PlatformDataOffset
	if o%SectorSize != 0 {
		is.warnf("vhd.locator.alignment", field, eoff+16,
			"data offset 0x%x is not sector aligned", o)
	}
	if o > uint64(l.end) || uint64(l.end)-o < uint64(loc.PlatformDataLength) {
		is.errorf("vhd.locator.past_end", field, eoff+16,
			"data [0x%x, +%d) lies past the data end 0x%x",
			o, loc.PlatformDataLength, l.end)
	}
	return is.list
}

// locatorRegions returns the file ranges reserved for locator data.
func locatorRegions(l *layout) []region {
	var rs []region
	for i, loc := range l.header.ParentLocators {
		space, ok := loc.DataSpaceBytes()
		if loc.PlatformCode == PlatformNone || !ok || space == 0 ||
			loc.PlatformDataOffset > 1<<62 {
			continue
		}
		o := int64(loc.PlatformDataOffset)
		rs = append(rs, region{o, o + space,
			fmt.Sprintf("locator %d data", i),
			int64(l.footer.DataOffset) + headerOffLocators +
				int64(i)*locatorSize})
	}
	return rs
}
