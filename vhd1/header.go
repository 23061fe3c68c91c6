package vhd1

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// DynamicHeader is the dynamic disk header of dynamic and differencing
// disks (FORMATS.md 2.5). Reserved1 and Reserved2 keep the reserved
// bytes as read.
type DynamicHeader struct {
	Cookie            [8]byte
	DataOffset        uint64
	TableOffset       uint64
	HeaderVersion     uint32
	MaxTableEntries   uint32
	BlockSize         uint32
	Checksum          uint32
	ParentUniqueID    [16]byte
	ParentTimeStamp   uint32
	Reserved1         uint32
	ParentUnicodeName [512]byte // UTF-16BE, zero padded
	ParentLocators    [8]ParentLocator
	Reserved2         [256]byte
}

// Offsets of header fields that errors and findings point at.
const (
	headerOffTableOffset = 16
	headerOffVersion     = 24
	headerOffMaxEntries  = 28
	headerOffBlockSize   = 32
	headerOffChecksum    = 36
	headerOffParentID    = 40
	headerOffParentTime  = 56
	headerOffParentName  = 64
	headerOffLocators    = 576
	locatorSize          = 24
)

// ParseDynamicHeader decodes a 1024-byte dynamic header without checking
// it. It returns false when b has another length.
func ParseDynamicHeader(b []byte) (DynamicHeader, bool) {
	var h DynamicHeader
	if len(b) != HeaderSize {
		return h, false
	}
	copy(h.Cookie[:], b[0:8])
	h.DataOffset = be.Uint64(b[8:])
	h.TableOffset = be.Uint64(b[16:])
	h.HeaderVersion = be.Uint32(b[24:])
	h.MaxTableEntries = be.Uint32(b[28:])
	h.BlockSize = be.Uint32(b[32:])
	h.Checksum = be.Uint32(b[36:])
	copy(h.ParentUniqueID[:], b[40:56])
	h.ParentTimeStamp = be.Uint32(b[56:])
	h.Reserved1 = be.Uint32(b[60:])
	copy(h.ParentUnicodeName[:], b[64:576])
	for i := range h.ParentLocators {
		o := headerOffLocators + i*locatorSize
		h.ParentLocators[i] = ParseParentLocator(b[o : o+locatorSize])
	}
	copy(h.Reserved2[:], b[768:])
	return h, true
}

// DecodeDynamicHeader decodes and validates the header in b, read at
// file offset off: cookie, checksum, version and block size. Placement
// against the file (Table Offset, Max Table Entries) is checked by the
// caller, which knows the file size. A failure is a *vdisk.CorruptError.
func DecodeDynamicHeader(b []byte, off int64) (*DynamicHeader, error) {
	h, ok := ParseDynamicHeader(b)
	if !ok {
		return nil, corrupt("dynamic header", "", off,
			"header is %d bytes, want 1024", len(b))
	}
	if err := firstError(headerIssues(&h, off)); err != nil {
		return nil, err
	}
	return &h, nil
}

// Encode returns the header's 1024 bytes with the checksum recomputed.
func (h *DynamicHeader) Encode() []byte {
	b := make([]byte, HeaderSize)
	copy(b[0:8], h.Cookie[:])
	be.PutUint64(b[8:], h.DataOffset)
	be.PutUint64(b[16:], h.TableOffset)
	be.PutUint32(b[24:], h.HeaderVersion)
	be.PutUint32(b[28:], h.MaxTableEntries)
	be.PutUint32(b[32:], h.BlockSize)
	copy(b[40:56], h.ParentUniqueID[:])
	be.PutUint32(b[56:], h.ParentTimeStamp)
	be.PutUint32(b[60:], h.Reserved1)
	copy(b[64:576], h.ParentUnicodeName[:])
	for i, l := range h.ParentLocators {
		o := headerOffLocators + i*locatorSize
		l.put(b[o : o+locatorSize])
	}
	copy(b[768:], h.Reserved2[:])
	h.Checksum = checksum(b, headerOffChecksum)
	be.PutUint32(b[36:], h.Checksum)
	return b
}

// rawChecksum returns the checksum the header's bytes should carry.
func (h *DynamicHeader) rawChecksum() uint32 {
	g := *h
	b := g.Encode()
	return be.Uint32(b[36:])
}

// BitmapSize returns the size of a block's sector bitmap: one bit per
// sector, rounded up to whole sectors (FORMATS.md 2.8).
func (h *DynamicHeader) BitmapSize() int64 {
	return bitmapSize(h.BlockSize)
}

func bitmapSize(blockSize uint32) int64 {
	bits := int64(blockSize) / SectorSize
	bytes := (bits + 7) / 8 // blocks below 4 KiB still need a byte
	return (bytes + SectorSize - 1) / SectorSize * SectorSize
}

// ParentName decodes Parent Unicode Name (UTF-16 big-endian, zero
// padded). Invalid UTF-16 is replaced, as the field is not guaranteed to
// be valid (FORMATS.md 2.5).
func (h *DynamicHeader) ParentName() string {
	u := make([]uint16, 0, 256)
	for i := 0; i+1 < len(h.ParentUnicodeName); i += 2 {
		c := be.Uint16(h.ParentUnicodeName[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// setParentName stores name as UTF-16BE; it fails when name does not fit
// in the 512-byte field.
func (h *DynamicHeader) setParentName(name string) error {
	u := utf16.Encode([]rune(name))
	if len(u)*2 > len(h.ParentUnicodeName) {
		return fmt.Errorf("parent name %q longer than 256 UTF-16 units", name)
	}
	h.ParentUnicodeName = [512]byte{}
	for i, c := range u {
		be.PutUint16(h.ParentUnicodeName[2*i:], c)
	}
	return nil
}

// PlatformCode is a parent locator's Platform Code (FORMATS.md 2.6).
type PlatformCode uint32

// Platform codes.
const (
	PlatformNone PlatformCode = 0
	PlatformWi2r PlatformCode = 0x57693272 // deprecated relative, ANSI
	PlatformWi2k PlatformCode = 0x5769326B // deprecated absolute, ANSI
	PlatformW2ru PlatformCode = 0x57327275 // relative, UTF-16LE
	PlatformW2ku PlatformCode = 0x57326B75 // absolute, UTF-16LE
	PlatformMac  PlatformCode = 0x4D616320 // Mac OS alias record
	PlatformMacX PlatformCode = 0x4D616358 // file URL, UTF-8
)

func (c PlatformCode) String() string {
	if c == PlatformNone {
		return "none"
	}
	var b [4]byte
	be.PutUint32(b[:], uint32(c))
	return creatorName(b)
}

// ParentLocator is one parent locator entry of the dynamic header
// (FORMATS.md 2.6).
type ParentLocator struct {
	PlatformCode       PlatformCode
	PlatformDataSpace  uint32 // bytes in practice, sectors per [VHD]
	PlatformDataLength uint32
	Reserved           uint32
	PlatformDataOffset uint64
}

// ParseParentLocator decodes a 24-byte locator entry.
func ParseParentLocator(b []byte) ParentLocator {
	return ParentLocator{
		PlatformCode:       PlatformCode(be.Uint32(b[0:])),
		PlatformDataSpace:  be.Uint32(b[4:]),
		PlatformDataLength: be.Uint32(b[8:]),
		Reserved:           be.Uint32(b[12:]),
		PlatformDataOffset: be.Uint64(b[16:]),
	}
}

func (l ParentLocator) put(b []byte) {
	be.PutUint32(b[0:], uint32(l.PlatformCode))
	be.PutUint32(b[4:], l.PlatformDataSpace)
	be.PutUint32(b[8:], l.PlatformDataLength)
	be.PutUint32(b[12:], l.Reserved)
	be.PutUint64(b[16:], l.PlatformDataOffset)
}

// maxLocatorData bounds the locator data we read: a path never needs
// more, and the bound keeps hostile lengths from sizing allocations.
const maxLocatorData = 64 << 10

// DataSpaceBytes interprets Platform Data Space with the heuristic of
// FORMATS.md 2.6: [VHD] says sectors, products write bytes; a value
// below 512 is sectors, a multiple of 512 is bytes, anything else is
// invalid.
func (l ParentLocator) DataSpaceBytes() (int64, bool) {
	s := int64(l.PlatformDataSpace)
	switch {
	case s < SectorSize:
		return s * SectorSize, true
	case s%SectorSize == 0:
		return s, true
	}
	return 0, false
}

// errLocator reports locator data that cannot be decoded to a path.
var errLocator = errors.New("locator data is not a path")

// LocatorPath decodes locator data to the path it holds, as stored
// (backslashes kept): UTF-16LE for W2ru and W2ku, ANSI for Wi2r and
// Wi2k, a file URL for MacX (returned decoded, without "file://").
// Trailing NULs are dropped. Mac alias records and unknown codes are not
// paths.
func LocatorPath(code PlatformCode, data []byte) (string, error) {
	var s string
	switch code {
	case PlatformW2ru, PlatformW2ku:
		if len(data)%2 != 0 {
			return "", fmt.Errorf("%w: odd UTF-16 length %d", errLocator, len(data))
		}
		u := make([]uint16, len(data)/2)
		for i := range u {
			u[i] = uint16(data[2*i]) | uint16(data[2*i+1])<<8
		}
		s = string(utf16.Decode(u))
	case PlatformWi2r, PlatformWi2k:
		s = string(data)
	case PlatformMacX:
		if !utf8.Valid(data) {
			return "", fmt.Errorf("%w: MacX data is not UTF-8", errLocator)
		}
		p, err := macXPath(strings.TrimRight(string(data), "\x00"))
		if err != nil {
			return "", err
		}
		s = p
	default:
		return "", fmt.Errorf("%w: platform code %v", errLocator, code)
	}
	s = strings.TrimRight(s, "\x00")
	if s == "" || strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("%w: empty or NUL inside", errLocator)
	}
	return s, nil
}

// macXPath turns a MacX file URL ("file://./parent.vhd",
// "file:///dir/parent.vhd") into a path.
func macXPath(s string) (string, error) {
	rest, ok := strings.CutPrefix(s, "file://")
	if !ok {
		return "", fmt.Errorf("%w: MacX %q is not a file URL", errLocator, s)
	}
	p, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("%w: MacX %q: %v", errLocator, s, err)
	}
	if h, r, ok := strings.Cut(p, "/"); ok && h == "localhost" {
		p = "/" + r
	}
	return p, nil
}

// encodeUTF16LE encodes s as UTF-16LE, the W2ru/W2ku payload.
func encodeUTF16LE(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i] = byte(c)
		b[2*i+1] = byte(c >> 8)
	}
	return b
}
