package vhd1

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Sizes and constants of the format (FORMATS.md 2).
const (
	// SectorSize is the only logical sector size VHD knows.
	SectorSize = 512

	// FooterSize is the size of the hard disk footer; OldFooterSize is
	// the 511-byte footer of Virtual PC versions before 2004.
	FooterSize    = 512
	OldFooterSize = 511

	// HeaderSize is the size of the dynamic disk header.
	HeaderSize = 1024

	// DefaultBlockSize is the block size of dynamic and differencing
	// disks unless the caller asks otherwise.
	DefaultBlockSize = 2 << 20

	// MaxDynamicSize is the largest virtual size of a dynamic or
	// differencing disk: 2040 GiB, 0xFF000000 sectors (FORMATS.md 2.11).
	MaxDynamicSize = 0xFF000000 * SectorSize

	// Version is the only File Format Version and Header Version.
	Version = 0x00010000

	// unused is an unallocated BAT entry.
	unused = 0xFFFFFFFF
)

// be is the byte order of every VHD integer (FORMATS.md 1.1).
var be = binary.BigEndian

var (
	footerCookie = [8]byte{'c', 'o', 'n', 'e', 'c', 't', 'i', 'x'}
	headerCookie = [8]byte{'c', 'x', 's', 'p', 'a', 'r', 's', 'e'}
)

// DiskType is the footer's Disk Type (FORMATS.md 2.2).
type DiskType uint32

// Disk types.
const (
	DiskTypeNone         DiskType = 0
	DiskTypeFixed        DiskType = 2
	DiskTypeDynamic      DiskType = 3
	DiskTypeDifferencing DiskType = 4
)

func (t DiskType) String() string {
	switch t {
	case DiskTypeNone:
		return "none"
	case DiskTypeFixed:
		return "fixed"
	case DiskTypeDynamic:
		return "dynamic"
	case DiskTypeDifferencing:
		return "differencing"
	}
	return fmt.Sprintf("DiskType(%d)", uint32(t))
}

// Feature bits of the footer (FORMATS.md 2.2).
const (
	FeatureTemporary = 0x1 // candidate for deletion on shutdown
	FeatureReserved  = 0x2 // must always be set
)

// checksum returns the one's complement of the byte sum of b, skipping
// the four bytes at skip (FORMATS.md 1.4). b is not modified.
func checksum(b []byte, skip int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= skip && i < skip+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// epoch is the zero of VHD time stamps: 2000-01-01 00:00:00 UTC.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Time converts a VHD time stamp to a time.
func Time(ts uint32) time.Time { return epoch.Add(time.Duration(ts) * time.Second) }

// TimeStamp converts t to a VHD time stamp, clamped to the field's range.
func TimeStamp(t time.Time) uint32 {
	s := t.Unix() - epoch.Unix()
	switch {
	case s < 0:
		return 0
	case s > 0xFFFFFFFF:
		return 0xFFFFFFFF
	}
	return uint32(s)
}

// Geometry is the footer's CHS geometry (FORMATS.md 2.4).
type Geometry struct {
	Cylinders       uint16
	Heads           uint8
	SectorsPerTrack uint8
}

// Size returns the bytes the geometry addresses.
func (g Geometry) Size() int64 {
	return int64(g.Cylinders) * int64(g.Heads) * int64(g.SectorsPerTrack) *
		SectorSize
}

func (g Geometry) String() string {
	return fmt.Sprintf("%d/%d/%d", g.Cylinders, g.Heads, g.SectorsPerTrack)
}

// CHS computes the geometry of a disk of size bytes with the algorithm
// of [VHD] "Appendix: CHS Calculation" (FORMATS.md 2.4). Every step
// rounds down, so the geometry usually addresses fewer bytes than size.
func CHS(size int64) Geometry {
	sectors := size / SectorSize
	if sectors > 65535*16*255 {
		sectors = 65535 * 16 * 255
	}
	var spt, heads, cth int64
	if sectors >= 65535*16*63 {
		spt, heads = 255, 16
		cth = sectors / spt
	} else {
		spt = 17
		cth = sectors / spt
		heads = (cth + 1023) / 1024
		if heads < 4 {
			heads = 4
		}
		if cth >= heads*1024 || heads > 16 {
			spt, heads = 31, 16
			cth = sectors / spt
		}
		if cth >= heads*1024 {
			spt, heads = 63, 16
			cth = sectors / spt
		}
	}
	return Geometry{
		Cylinders:       uint16(cth / heads),
		Heads:           uint8(heads),
		SectorsPerTrack: uint8(spt),
	}
}

// maxGeometry is the largest CHS value, 65535/16/255.
var maxGeometry = Geometry{65535, 16, 255}

// Footer is the VHD hard disk footer (FORMATS.md 2.2). Reserved keeps
// the 427 reserved bytes as read, so a rewritten footer preserves them
// (Windows 10 leaves non-zero bytes there and checksums them).
type Footer struct {
	Cookie         [8]byte
	Features       uint32
	FormatVersion  uint32
	DataOffset     uint64
	TimeStamp      uint32
	CreatorApp     [4]byte
	CreatorVersion uint32
	CreatorHostOS  [4]byte
	OriginalSize   uint64
	CurrentSize    uint64
	Geometry       Geometry
	DiskType       DiskType
	Checksum       uint32
	UniqueID       [16]byte
	SavedState     uint8
	Reserved       [427]byte
}

// Offsets of the footer fields that errors and findings point at.
const (
	footerOffFeatures   = 8
	footerOffVersion    = 12
	footerOffDataOffset = 16
	footerOffCreator    = 28
	footerOffHostOS     = 36
	footerOffCurSize    = 48
	footerOffGeometry   = 56
	footerOffDiskType   = 60
	footerOffChecksum   = 64
)

// ParseFooter decodes a 512-byte footer, or a 511-byte old footer
// (treated as if a zero byte followed), without checking it. It returns
// false when b has another length.
func ParseFooter(b []byte) (Footer, bool) {
	var f Footer
	if len(b) != FooterSize && len(b) != OldFooterSize {
		return f, false
	}
	var buf [FooterSize]byte
	copy(buf[:], b)
	copy(f.Cookie[:], buf[0:8])
	f.Features = be.Uint32(buf[8:])
	f.FormatVersion = be.Uint32(buf[12:])
	f.DataOffset = be.Uint64(buf[16:])
	f.TimeStamp = be.Uint32(buf[24:])
	copy(f.CreatorApp[:], buf[28:32])
	f.CreatorVersion = be.Uint32(buf[32:])
	copy(f.CreatorHostOS[:], buf[36:40])
	f.OriginalSize = be.Uint64(buf[40:])
	f.CurrentSize = be.Uint64(buf[48:])
	f.Geometry = Geometry{be.Uint16(buf[56:]), buf[58], buf[59]}
	f.DiskType = DiskType(be.Uint32(buf[60:]))
	f.Checksum = be.Uint32(buf[64:])
	copy(f.UniqueID[:], buf[68:84])
	f.SavedState = buf[84]
	copy(f.Reserved[:], buf[85:])
	return f, true
}

// DecodeFooter decodes and validates the footer in b (512 or 511 bytes)
// read at file offset off. It checks the cookie, the checksum, the
// version and the disk type; a failure is a *vdisk.CorruptError.
func DecodeFooter(b []byte, off int64) (*Footer, error) {
	f, ok := ParseFooter(b)
	if !ok {
		return nil, corrupt("footer", "", off,
			"footer is %d bytes, want 512 or 511", len(b))
	}
	if err := firstError(footerIssues(&f, off)); err != nil {
		return nil, err
	}
	return &f, nil
}

// Encode returns the footer's 512 bytes with the checksum recomputed.
func (f *Footer) Encode() []byte {
	b := make([]byte, FooterSize)
	copy(b[0:8], f.Cookie[:])
	be.PutUint32(b[8:], f.Features)
	be.PutUint32(b[12:], f.FormatVersion)
	be.PutUint64(b[16:], f.DataOffset)
	be.PutUint32(b[24:], f.TimeStamp)
	copy(b[28:32], f.CreatorApp[:])
	be.PutUint32(b[32:], f.CreatorVersion)
	copy(b[36:40], f.CreatorHostOS[:])
	be.PutUint64(b[40:], f.OriginalSize)
	be.PutUint64(b[48:], f.CurrentSize)
	be.PutUint16(b[56:], f.Geometry.Cylinders)
	b[58] = f.Geometry.Heads
	b[59] = f.Geometry.SectorsPerTrack
	be.PutUint32(b[60:], uint32(f.DiskType))
	copy(b[68:84], f.UniqueID[:])
	b[84] = f.SavedState
	copy(b[85:], f.Reserved[:])
	f.Checksum = checksum(b, footerOffChecksum)
	be.PutUint32(b[64:], f.Checksum)
	return b
}

// rawChecksum returns the checksum a footer's bytes should carry.
func (f *Footer) rawChecksum() uint32 {
	g := *f
	b := g.Encode()
	return be.Uint32(b[64:])
}

// fixedDataOffset reports whether v is an accepted fixed-disk Data
// Offset: 64-bit all ones (what products write) or the spec text's
// 0xFFFFFFFF.
func fixedDataOffset(v uint64) bool {
	return v == 0xFFFFFFFFFFFFFFFF || v == 0xFFFFFFFF
}

// creatorUsesCHS says, for the creator codes qemu 7.2 knows, whether
// qemu sizes the disk by its CHS geometry (true) or by Current Size
// (false). Codes not listed, "vbox" among them, get the CHS size in
// qemu (FORMATS.md 2.3).
var creatorUsesCHS = map[string]bool{
	"vpc ": true, "vs  ": true, "qemu": true,
	"win ": false, "d2v": false, "qem2": false, "tap": false, "CTXS": false,
}

// creatorName returns the creator code as printable text.
func creatorName(b [4]byte) string {
	s := make([]byte, 0, 4)
	for _, c := range b {
		switch {
		case c == 0:
			s = append(s, `\0`...)
		case c < 0x20 || c > 0x7e:
			s = append(s, fmt.Sprintf(`\x%02x`, c)...)
		default:
			s = append(s, c)
		}
	}
	return string(s)
}

// creatorKey normalises d2v and tap, whose fourth byte varies
// (FORMATS.md 2.3: match the first three bytes).
func creatorKey(b [4]byte) string {
	if string(b[:3]) == "d2v" || string(b[:3]) == "tap" {
		return string(b[:3])
	}
	return string(b[:])
}
