package vhdx

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"

	"github.com/Microsoft/go-winio/pkg/guid"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// This file holds the fixed-size structures of the header section
// ([MS-VHDX] 2.2; FORMATS.md 3.2–3.4): the file type identifier, the two
// headers and the two region tables, with pure decoders and encoders.

// Sizes and offsets of the header section ([MS-VHDX] 2.1; FORMATS.md 3.1).
const (
	kiB = 1 << 10
	miB = 1 << 20

	identifierOffset   = 0
	header1Offset      = 64 * kiB
	header2Offset      = 128 * kiB
	regionTable1Offset = 192 * kiB
	regionTable2Offset = 256 * kiB
	headerSectionSize  = 1 * miB

	headerSize      = 4 * kiB
	regionTableSize = 64 * kiB

	maxRegionEntries = 2047
	maxVirtualSize   = 64 << 40
	// maxFileSize bounds every file offset a log entry may name: the
	// largest payload plus room for the BAT, sector bitmaps (1 MiB per
	// 4 GiB of 512-byte sectors: 16 GiB at 64 TiB) and metadata. A log
	// entry beyond it would make replay extend the file absurdly.
	maxFileSize  = maxVirtualSize + 1<<40
	minBlockSize = 1 * miB
	maxBlockSize = 256 * miB
)

var le = binary.LittleEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum returns the CRC-32C of b with the 4 bytes at crcOff taken as
// zero, without modifying b (FORMATS.md 1.3).
func checksum(b []byte, crcOff int) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:crcOff])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, b[crcOff+4:])
}

// corrupt returns a *vdisk.CorruptError for the vhdx format.
func corrupt(structure, field string, off int64, reason string, args ...any) error {
	return vdisk.Corruptf("vhdx", structure, field, off, reason, args...)
}

// GUID is a GUID in its on-disk byte order (FORMATS.md 1.2).
type GUID [16]byte

// mustGUID converts a canonical text GUID to on-disk order; it is for
// package-level constants only.
func mustGUID(s string) GUID {
	g, err := guid.FromString(s)
	if err != nil {
		panic(err)
	}
	return GUID(g.ToWindowsArray())
}

// String returns the canonical lowercase text form.
func (g GUID) String() string { return guid.FromWindowsArray(g).String() }

// IsZero reports whether g is all zero.
func (g GUID) IsZero() bool { return g == GUID{} }

// newGUID returns a random non-zero GUID.
func newGUID() (GUID, error) {
	g, err := guid.NewV4()
	if err != nil {
		return GUID{}, err
	}
	return GUID(g.ToWindowsArray()), nil
}

// Region GUIDs ([MS-VHDX] 2.2.3.2; FORMATS.md 3.4).
var (
	regionBAT      = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	regionMetadata = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
)

// FileIdentifier is the file type identifier at offset 0 ([MS-VHDX]
// 2.2.1; FORMATS.md 3.2).
type FileIdentifier struct {
	Creator string // diagnostic only
}

const identifierSignature = "vhdxfile"

// decodeFileIdentifier decodes the first 520 bytes of the file.
func decodeFileIdentifier(b []byte) (*FileIdentifier, error) {
	if len(b) < 8 || string(b[:8]) != identifierSignature {
		return nil, corrupt("file identifier", "Signature", 0, "missing %q", identifierSignature)
	}
	c := b[8:]
	if len(c) > 512 {
		c = c[:512]
	}
	return &FileIdentifier{Creator: decodeUTF16Z(c)}, nil
}

// encode returns the 64 KiB identifier slot.
func (fi *FileIdentifier) encode() []byte {
	b := make([]byte, 64*kiB)
	copy(b, identifierSignature)
	u := utf16.Encode([]rune(fi.Creator))
	if len(u) > 255 {
		u = u[:255] // keep a terminator inside the 512 bytes
	}
	for i, v := range u {
		le.PutUint16(b[8+2*i:], v)
	}
	return b
}

// decodeUTF16Z decodes UTF-16LE up to the first NUL.
func decodeUTF16Z(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		v := le.Uint16(b[i:])
		if v == 0 {
			break
		}
		u = append(u, v)
	}
	return string(utf16.Decode(u))
}

// Header is a VHDX header ([MS-VHDX] 2.2.2; FORMATS.md 3.3).
type Header struct {
	SequenceNumber uint64
	FileWriteGUID  GUID
	DataWriteGUID  GUID
	LogGUID        GUID
	LogVersion     uint16
	Version        uint16
	LogLength      uint32
	LogOffset      uint64
}

const headerSignature = "head"

// decodeHeader decodes a 4 KiB header at file offset off. It checks the
// signature, the checksum and Version (a header with Version != 1 is not
// processed, FORMATS.md 3.3).
func decodeHeader(b []byte, off int64) (*Header, error) {
	if len(b) != headerSize {
		return nil, corrupt(headerName(off), "", off, "short header: %d bytes", len(b))
	}
	name := headerName(off)
	if string(b[:4]) != headerSignature {
		return nil, corrupt(name, "Signature", off, "missing %q", headerSignature)
	}
	if got, want := le.Uint32(b[4:]), checksum(b, 4); got != want {
		return nil, corrupt(name, "Checksum", off+4, "crc 0x%08x, computed 0x%08x", got, want)
	}
	h := &Header{
		SequenceNumber: le.Uint64(b[8:]),
		LogVersion:     le.Uint16(b[64:]),
		Version:        le.Uint16(b[66:]),
		LogLength:      le.Uint32(b[68:]),
		LogOffset:      le.Uint64(b[72:]),
	}
	copy(h.FileWriteGUID[:], b[16:32])
	copy(h.DataWriteGUID[:], b[32:48])
	copy(h.LogGUID[:], b[48:64])
	if h.Version != 1 {
		return nil, corrupt(name, "Version", off+66, "version %d, want 1", h.Version)
	}
	return h, nil
}

// headerName names the header slot at off.
func headerName(off int64) string {
	if off == header2Offset {
		return "header 2"
	}
	return "header 1"
}

// encode returns the 4 KiB header with its checksum.
func (h *Header) encode() []byte {
	b := make([]byte, headerSize)
	copy(b, headerSignature)
	le.PutUint64(b[8:], h.SequenceNumber)
	copy(b[16:], h.FileWriteGUID[:])
	copy(b[32:], h.DataWriteGUID[:])
	copy(b[48:], h.LogGUID[:])
	le.PutUint16(b[64:], h.LogVersion)
	le.PutUint16(b[66:], h.Version)
	le.PutUint32(b[68:], h.LogLength)
	le.PutUint64(b[72:], h.LogOffset)
	le.PutUint32(b[4:], checksum(b, 4))
	return b
}

// chooseHeader picks the current header from the two 4 KiB slots
// ([MS-VHDX] 2.2.2; FORMATS.md 3.3). It returns the header and its slot
// (0 or 1). Equal sequence numbers are accepted only when both slots are
// byte-identical (Disk2VHD writes such files). The LogVersion rule and
// the log fields are checked by [Header.validate].
func chooseHeader(b1, b2 []byte) (*Header, int, error) {
	h1, err1 := decodeHeader(b1, header1Offset)
	h2, err2 := decodeHeader(b2, header2Offset)
	switch {
	case err1 != nil && err2 != nil:
		return nil, 0, corrupt("headers", "", header1Offset,
			"no valid header (%v; %v)", err1, err2)
	case err2 != nil:
		return h1, 0, nil
	case err1 != nil:
		return h2, 1, nil
	case h1.SequenceNumber > h2.SequenceNumber:
		return h1, 0, nil
	case h2.SequenceNumber > h1.SequenceNumber:
		return h2, 1, nil
	case bytes.Equal(b1, b2):
		return h1, 0, nil
	}
	return nil, 0, corrupt("headers", "SequenceNumber", header1Offset+8,
		"both headers valid with sequence number %d but different content",
		h1.SequenceNumber)
}

// validate checks the fields of the current header against the file
// size ([MS-VHDX] 2.2.2; FORMATS.md 3.3, 3.10).
func (h *Header) validate(slot int, fileSize int64) error {
	off := int64(header1Offset)
	if slot == 1 {
		off = header2Offset
	}
	name := headerName(off)
	if h.LogVersion != 0 && !h.LogGUID.IsZero() {
		return corrupt(name, "LogVersion", off+64, "log version %d, want 0", h.LogVersion)
	}
	if h.LogLength%miB != 0 {
		return corrupt(name, "LogLength", off+68, "log length %d not a multiple of 1 MiB", h.LogLength)
	}
	if h.LogOffset%miB != 0 || h.LogOffset < headerSectionSize {
		return corrupt(name, "LogOffset", off+72, "log offset %d not 1 MiB-aligned after the header section", h.LogOffset)
	}
	if h.LogLength == 0 && !h.LogGUID.IsZero() {
		return corrupt(name, "LogLength", off+68, "log guid set but log is empty")
	}
	if h.LogOffset > maxFileOffset || h.LogLength > 0 &&
		h.LogOffset+uint64(h.LogLength) > uint64(fileSize) {
		return corrupt(name, "LogOffset", off+72, "log [%d, +%d) beyond end of file %d", h.LogOffset, h.LogLength, fileSize)
	}
	return nil
}

// RegionTableEntry is one entry of the region table ([MS-VHDX] 2.2.3.2;
// FORMATS.md 3.4).
type RegionTableEntry struct {
	GUID       GUID
	FileOffset uint64
	Length     uint32
	Required   uint32
}

// RegionTable is the region table ([MS-VHDX] 2.2.3; FORMATS.md 3.4).
type RegionTable struct {
	Entries []RegionTableEntry
}

const regionSignature = "regi"

// regionTableName names the copy at off.
func regionTableName(off int64) string {
	if off == regionTable2Offset {
		return "region table 2"
	}
	return "region table 1"
}

// decodeRegionTable decodes the 64 KiB table at file offset off and
// checks every structural rule: signature, checksum, count, entry
// alignment, unique GUIDs, no overlaps with each other or the header
// section. Known-region presence is checked by [RegionTable.regions].
func decodeRegionTable(b []byte, off int64) (*RegionTable, error) {
	name := regionTableName(off)
	if len(b) != regionTableSize {
		return nil, corrupt(name, "", off, "short table: %d bytes", len(b))
	}
	if string(b[:4]) != regionSignature {
		return nil, corrupt(name, "Signature", off, "missing %q", regionSignature)
	}
	if got, want := le.Uint32(b[4:]), checksum(b, 4); got != want {
		return nil, corrupt(name, "Checksum", off+4, "crc 0x%08x, computed 0x%08x", got, want)
	}
	n := le.Uint32(b[8:])
	if n > maxRegionEntries {
		return nil, corrupt(name, "EntryCount", off+8, "%d entries, at most %d", n, maxRegionEntries)
	}
	rt := &RegionTable{Entries: make([]RegionTableEntry, n)}
	for i := range rt.Entries {
		p := 16 + 32*i
		e := &rt.Entries[i]
		copy(e.GUID[:], b[p:p+16])
		e.FileOffset = le.Uint64(b[p+16:])
		e.Length = le.Uint32(b[p+24:])
		e.Required = le.Uint32(b[p+28:])
		eoff := off + int64(p)
		if e.FileOffset%miB != 0 || e.FileOffset < headerSectionSize || e.FileOffset > maxFileOffset {
			return nil, corrupt(name, "FileOffset", eoff+16, "region %s at %d: not 1 MiB-aligned after the header section", e.GUID, e.FileOffset)
		}
		if e.Length%miB != 0 || e.Length == 0 {
			return nil, corrupt(name, "Length", eoff+24, "region %s length %d not a non-zero multiple of 1 MiB", e.GUID, e.Length)
		}
		for j := range i {
			o := &rt.Entries[j]
			if o.GUID == e.GUID {
				return nil, corrupt(name, "Guid", eoff, "region %s listed twice", e.GUID)
			}
			if overlaps(o.FileOffset, uint64(o.Length), e.FileOffset, uint64(e.Length)) {
				return nil, corrupt(name, "FileOffset", eoff+16, "region %s overlaps region %s", e.GUID, o.GUID)
			}
		}
	}
	return rt, nil
}

// maxFileOffset bounds every file offset we accept: 2^52, far above any
// real file and small enough that offset+length never overflows.
const maxFileOffset = 1 << 52

// overlaps reports whether [a, a+al) and [b, b+bl) intersect.
func overlaps(a, al, b, bl uint64) bool { return a < b+bl && b < a+al }

// encode returns the 64 KiB table with its checksum.
func (rt *RegionTable) encode() []byte {
	b := make([]byte, regionTableSize)
	copy(b, regionSignature)
	le.PutUint32(b[8:], uint32(len(rt.Entries)))
	for i, e := range rt.Entries {
		p := 16 + 32*i
		copy(b[p:], e.GUID[:])
		le.PutUint64(b[p+16:], e.FileOffset)
		le.PutUint32(b[p+24:], e.Length)
		le.PutUint32(b[p+28:], e.Required)
	}
	le.PutUint32(b[4:], checksum(b, 4))
	return b
}

// regions returns the BAT and metadata entries. Both must be present
// (once, which decoding guarantees); an unknown region with Required set
// makes the file unsupported.
func (rt *RegionTable) regions(off int64) (bat, meta RegionTableEntry, err error) {
	name := regionTableName(off)
	var haveBAT, haveMeta bool
	for i, e := range rt.Entries {
		switch e.GUID {
		case regionBAT:
			bat, haveBAT = e, true
		case regionMetadata:
			meta, haveMeta = e, true
		default:
			if e.Required&1 != 0 {
				return bat, meta, vdisk.Unsupportedf("vhdx: %s entry %d: unknown required region %s", name, i, e.GUID)
			}
		}
	}
	if !haveBAT {
		return bat, meta, corrupt(name, "", off, "no BAT region")
	}
	if !haveMeta {
		return bat, meta, corrupt(name, "", off, "no metadata region")
	}
	return bat, meta, nil
}

// parseGUIDText parses canonical GUID text into on-disk order.
func parseGUIDText(s string) (GUID, error) {
	g, err := guid.FromString(s)
	if err != nil {
		return GUID{}, err
	}
	return GUID(g.ToWindowsArray()), nil
}
