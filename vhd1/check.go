package vhd1

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Check checks every VHD rule of FORMATS.md section 5 on f and returns
// the rules broken as findings with file offsets. path and opts locate
// the parent of a differencing disk, whose identity is checked too. The
// error is only for a check that cannot run (an I/O error).
func Check(f vdisk.File, path string, opts *vdisk.OpenOptions) ([]vdisk.Finding, error) {
	if opts == nil {
		opts = &vdisk.OpenOptions{}
	}
	c := &checker{f: f}
	err := c.run(path, opts)
	var ce *vdisk.CorruptError
	if errors.As(err, &ce) {
		// A short read: the file ends inside a structure.
		c.add([]issue{{vdisk.SeverityError, ce.Structure, "", "vhd.truncated",
			ce.Offset, ce.Reason}})
		err = nil
	}
	return c.out, err
}

type checker struct {
	f   vdisk.File
	out []vdisk.Finding
}

func (c *checker) add(is []issue) {
	for _, i := range is {
		c.out = append(c.out, i.finding())
	}
}

// stop adds is and reports whether one of them is an error.
func (c *checker) stop(is []issue) bool {
	c.add(is)
	return firstError(is) != nil
}

func (c *checker) run(path string, opts *vdisk.OpenOptions) error {
	size, err := c.f.Size()
	if err != nil {
		return err
	}
	if size < OldFooterSize {
		c.add([]issue{{vdisk.SeverityError, "file", "", "vhd.truncated", 0,
			fmt.Sprintf("file of %d bytes is too small for a footer", size)}})
		return nil
	}
	c.checkFooters(size)
	res, err := readFooter(c.f, size)
	if err != nil {
		if errors.Is(err, vdisk.ErrCorrupt) {
			return nil // already reported by checkFooters
		}
		return err
	}
	l := &res.layout
	if c.stop(sizeIssues(l)) || l.footer.DiskType == DiskTypeFixed {
		return nil
	}
	hb := make([]byte, HeaderSize)
	if err := readFull(c.f, hb, int64(l.footer.DataOffset)); err != nil {
		return err
	}
	h, _ := ParseDynamicHeader(hb)
	l.header = &h
	if c.stop(headerIssues(&h, int64(l.footer.DataOffset))) ||
		c.stop(tableIssues(l)) {
		return nil
	}
	bat, err := readBAT(c.f, l)
	if err != nil {
		return err
	}
	regions := metadataRegions(l)
	if l.footer.DiskType == DiskTypeDifferencing {
		c.add(locatorIssues(l))
		regions = append(regions, locatorRegions(l)...)
	}
	c.add(batIssues(l, bat, regions))
	if l.footer.DiskType == DiskTypeDifferencing && (opts == nil || !opts.Parent.Skip) {
		c.checkParent(res, bat, path, opts)
	}
	return nil
}

// checkFooters reports the end footer's rules, or the old 511-byte
// footer's, and for dynamic disks the copy at offset 0 and whether it
// matches.
func (c *checker) checkFooters(size int64) {
	n := min(int64(FooterSize), size)
	b := make([]byte, n)
	if readFull(c.f, b, size-n) != nil {
		return
	}
	end, _ := ParseFooter(b)
	endOff := size - n
	if end.Cookie != footerCookie && n == FooterSize &&
		bytes.Equal(b[1:9], footerCookie[:]) {
		end, _ = ParseFooter(b[1:])
		endOff = size - OldFooterSize
		c.add([]issue{{vdisk.SeverityWarning, "footer", "", "vhd.footer.old",
			endOff, "511-byte footer of Virtual PC before 2004"}})
	}
	endIs := footerIssues(&end, endOff)
	c.add(endIs)
	var first Footer
	var firstIs []issue
	if size >= FooterSize+HeaderSize {
		fb := make([]byte, FooterSize)
		if readFull(c.f, fb, 0) != nil {
			return
		}
		first, _ = ParseFooter(fb)
		firstIs = footerIssues(&first, 0)
	}
	endOK := firstError(endIs) == nil
	if endOK && end.DiskType == DiskTypeFixed {
		return
	}
	for i := range firstIs {
		firstIs[i].structure = "footer copy"
	}
	if !endOK {
		if firstError(firstIs) == nil && first.DiskType != DiskTypeFixed {
			c.add([]issue{{vdisk.SeverityWarning, "footer", "",
				"vhd.footer.fallback", 0,
				"the end footer is damaged; using the copy at offset 0"}})
		} else {
			c.add(firstIs)
		}
		return
	}
	c.add(firstIs)
	if firstError(firstIs) == nil && first != end {
		c.add([]issue{{vdisk.SeverityError, "footer copy", "",
			"vhd.footer.copy_differs", 0,
			fmt.Sprintf("the footer copy at 0 differs from the footer at 0x%x",
				endOff)}})
	}
}

// checkParent locates the parent the way Open does and reports what
// is wrong with the link.
func (c *checker) checkParent(res *footerResult, bat []uint32, path string, opts *vdisk.OpenOptions) {
	d := &Disk{f: c.f, path: path, readOnly: true, footer: *res.footer,
		footerSrc: res.src, next: res.end, header: res.header, bat: bat}
	if res.src == "copy at 0" {
		d.fileSize = res.fileSize
	}
	err := d.openParent(opts, 0)
	hoff := int64(res.footer.DataOffset)
	switch {
	case errors.Is(err, vdisk.ErrParentMismatch):
		c.add([]issue{{vdisk.SeverityError, "dynamic header",
			"Parent Unique Id", "vhd.parent.mismatch", hoff + headerOffParentID,
			err.Error()}})
	case errors.Is(err, vdisk.ErrParentNotFound):
		c.add([]issue{{vdisk.SeverityError, "dynamic header", "",
			"vhd.parent.not_found", hoff + headerOffLocators, err.Error()}})
	case err != nil:
		c.add([]issue{{vdisk.SeverityError, "dynamic header", "",
			"vhd.parent.open", hoff + headerOffLocators, err.Error()}})
	}
	for _, w := range d.warnings {
		c.add([]issue{{vdisk.SeverityWarning, "dynamic header",
			"Parent Time Stamp", "vhd.parent.timestamp",
			hoff + headerOffParentTime, w}})
	}
	if d.parent != nil {
		if d.parent.Size() != d.Size() {
			c.add([]issue{{vdisk.SeverityWarning, "footer", "Current Size",
				"vhd.parent.size", res.footerOff + footerOffCurSize,
				fmt.Sprintf("parent size %d differs from this disk's %d",
					d.parent.Size(), d.Size())}})
		}
		d.parent.Close()
	}
}

// Azure limits for uploaded disks (FORMATS.md 4.2).
const (
	MiB          = 1 << 20
	AzureMinSize = 20 * MiB
	AzureMaxSize = 32 << 40
)

// AzureSize returns the virtual size Azure accepts for a disk of size
// bytes: rounded up to a whole MiB, and at least 20 MiB. The extra
// bytes read as zeros.
func AzureSize(size int64) int64 {
	return max((size+MiB-1)/MiB*MiB, AzureMinSize)
}

// CheckAzure reports every rule of FORMATS.md 4.2 that keeps Azure from
// accepting f as an uploaded disk: a fixed VHD, a file of N MiB + 512
// bytes with N MiB from 20 MiB to 32 TiB, a valid 512-byte footer with
// Data Offset all ones and Creator Host OS "Wi2k", and a creator code
// that makes every tool read Current Size. path is for messages only.
// The error is only for a check that cannot run (an I/O error).
func CheckAzure(f vdisk.File, path string) ([]vdisk.Finding, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	is := issues{structure: "footer"}
	if size < FooterSize {
		is.errorf("azure.footer", "", 0, "%s: file of %d bytes has no "+
			"512-byte footer", path, size)
		return toFindings(is.list), nil
	}
	b := make([]byte, FooterSize)
	if err := readFull(f, b, size-FooterSize); err != nil {
		return nil, err
	}
	off := size - FooterSize
	ft, _ := ParseFooter(b)
	if ft.Cookie != footerCookie {
		is.errorf("azure.footer", "Cookie", off, "no footer in the last "+
			"512 bytes: Azure needs a fixed VHD (the footer after the data)")
		return toFindings(is.list), nil
	}
	if want := ft.rawChecksum(); ft.Checksum != want {
		is.errorf("azure.footer.checksum", "Checksum", off+footerOffChecksum,
			"checksum 0x%08x, computed 0x%08x", ft.Checksum, want)
	}
	if ft.FormatVersion != Version {
		is.errorf("azure.footer.version", "File Format Version",
			off+footerOffVersion, "version 0x%08x, want 0x00010000",
			ft.FormatVersion)
	}
	if ft.DiskType != DiskTypeFixed {
		is.errorf("azure.type", "Disk Type", off+footerOffDiskType,
			"%v disk: Azure accepts only fixed VHDs (convert with --azure)",
			ft.DiskType)
	}
	azureSizeIssues(&is, &ft, size, off)
	if ft.DiskType == DiskTypeFixed && ft.DataOffset != 0xFFFFFFFFFFFFFFFF {
		is.errorf("azure.data_offset", "Data Offset", off+footerOffDataOffset,
			"data offset 0x%x, a fixed disk must have all ones "+
				"(0xFFFFFFFFFFFFFFFF)", ft.DataOffset)
	}
	if ft.CreatorHostOS != creatorHostOS {
		is.errorf("azure.creator_host_os", "Creator Host OS",
			off+footerOffHostOS, "host OS %q, Azure expects \"Wi2k\"",
			creatorName(ft.CreatorHostOS))
	}
	if chs, ok := creatorUsesCHS[creatorKey(ft.CreatorApp)]; (chs || !ok) &&
		ft.Geometry != maxGeometry && ft.Geometry.Size() != int64(ft.CurrentSize) {
		is.warnf("azure.creator_application", "Creator Application",
			off+footerOffCreator, "creator %q makes tools that follow it "+
				"(Virtual PC, qemu) read the CHS size %d instead of "+
				"Current Size %d", creatorName(ft.CreatorApp),
			ft.Geometry.Size(), ft.CurrentSize)
	}
	if ft.Features&FeatureReserved == 0 {
		is.errorf("azure.features", "Features", off+footerOffFeatures,
			"features 0x%08x: reserved bit 0x2 must be set", ft.Features)
	}
	return toFindings(is.list), nil
}

// azureSizeIssues checks the size rules: a whole number of MiB inside
// Azure's range, and a file of exactly that size plus the footer.
func azureSizeIssues(is *issues, ft *Footer, size, off int64) {
	cur := int64(ft.CurrentSize)
	if ft.CurrentSize > 1<<62 {
		cur = -1
	}
	if cur%MiB != 0 {
		is.errorf("azure.size_mib", "Current Size", off+footerOffCurSize,
			"virtual size %d is not a whole number of MiB (round up to %d)",
			ft.CurrentSize, AzureSize(cur))
	}
	if cur < AzureMinSize || cur > AzureMaxSize {
		is.errorf("azure.size_range", "Current Size", off+footerOffCurSize,
			"virtual size %d is outside Azure's range of 20 MiB to 32 TiB",
			ft.CurrentSize)
	}
	if ft.DiskType == DiskTypeFixed && size != cur+FooterSize {
		is.errorf("azure.file_size", "", off,
			"file of %d bytes, want virtual size %d + 512", size, ft.CurrentSize)
	}
}

func toFindings(is []issue) []vdisk.Finding {
	out := make([]vdisk.Finding, 0, len(is))
	for _, i := range is {
		out = append(out, i.finding())
	}
	return out
}
