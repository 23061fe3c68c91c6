package vhdx

import (
	"fmt"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// This file holds the BAT ([MS-VHDX] 2.5; FORMATS.md 3.6) and sector
// bitmaps ([MS-VHDX] 2.4.3; FORMATS.md 3.7).

// BlockState is the state field of a BAT entry ([MS-VHDX] 2.5.1).
type BlockState uint8

// Payload block states ([MS-VHDX] 2.5.1.1) and the sector bitmap
// present state ([MS-VHDX] 2.5.1.2).
const (
	BlockNotPresent       BlockState = 0
	BlockUndefined        BlockState = 1
	BlockZero             BlockState = 2
	BlockUnmapped         BlockState = 3
	blockUnmappedLegacy   BlockState = 5 // v0.95 draft value, read as UNMAPPED
	BlockFullyPresent     BlockState = 6
	BlockPartiallyPresent BlockState = 7

	SBBlockNotPresent BlockState = 0
	SBBlockPresent    BlockState = 6
)

var blockStateNames = [8]string{"not_present", "undefined", "zero",
	"unmapped", "reserved_4", "unmapped_legacy", "fully_present",
	"partially_present"}

func (s BlockState) String() string {
	if int(s) < len(blockStateNames) {
		return blockStateNames[s]
	}
	return fmt.Sprintf("BlockState(%d)", uint8(s))
}

// batEntry is a raw 64-bit BAT entry.
type batEntry uint64

const batOffsetMask = 0xFFFFFFFFFFF00000

func (e batEntry) state() BlockState { return BlockState(e & 7) }
func (e batEntry) offset() int64     { return int64(uint64(e) & batOffsetMask) }

// makeEntry builds an entry; offset must be 1 MiB-aligned.
func makeEntry(s BlockState, offset int64) batEntry {
	return batEntry(uint64(offset)&batOffsetMask | uint64(s))
}

// geometry is the BAT layout derived from the metadata (FORMATS.md 3.6).
type geometry struct {
	blockSize    int64
	sectorSize   int64 // logical
	virtualSize  int64
	chunkRatio   int64 // payload blocks per chunk
	dataBlocks   int64
	bitmapBlocks int64
	totalEntries int64
	hasParent    bool
}

// newGeometry computes the layout; the parameters must already be
// validated (validBlockSize, validSectorSize, size ≤ 64 TiB).
func newGeometry(m *Metadata) geometry {
	g := geometry{
		blockSize:   int64(m.BlockSize),
		sectorSize:  int64(m.LogicalSectorSize),
		virtualSize: int64(m.VirtualDiskSize),
		hasParent:   m.HasParent,
	}
	g.chunkRatio = (1 << 23) * g.sectorSize / g.blockSize
	g.dataBlocks = ceilDiv(g.virtualSize, g.blockSize)
	g.bitmapBlocks = ceilDiv(g.dataBlocks, g.chunkRatio)
	if g.hasParent {
		g.totalEntries = g.bitmapBlocks * (g.chunkRatio + 1)
	} else {
		g.totalEntries = g.dataBlocks + (g.dataBlocks-1)/g.chunkRatio
	}
	return g
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// roundUp rounds n up to a multiple of m (a power of two).
func roundUp(n, m int64) int64 { return (n + m - 1) &^ (m - 1) }

// payloadIndex returns the BAT index of payload block k.
func (g *geometry) payloadIndex(k int64) int64 { return k + k/g.chunkRatio }

// bitmapIndex returns the BAT index of the sector bitmap of chunk c.
func (g *geometry) bitmapIndex(c int64) int64 {
	return c*(g.chunkRatio+1) + g.chunkRatio
}

// isBitmapIndex reports whether BAT index i is a sector bitmap entry.
func (g *geometry) isBitmapIndex(i int64) bool {
	return i%(g.chunkRatio+1) == g.chunkRatio
}

// sectorsPerBlock returns the logical sectors of one payload block.
func (g *geometry) sectorsPerBlock() int64 { return g.blockSize / g.sectorSize }

// batBytes returns the bytes the entries need.
func (g *geometry) batBytes() int64 { return g.totalEntries * 8 }

// decodeBAT decodes the entries from b (at file offset off) and checks
// each state for the disk type (FORMATS.md 3.6). Offsets are checked by
// [checkBlocks]. b must hold at least totalEntries*8 bytes.
func decodeBAT(b []byte, off int64, g *geometry, typ vdisk.Type) ([]batEntry, error) {
	if int64(len(b)) < g.batBytes() {
		return nil, corrupt("BAT", "", off, "%d bytes, need %d", len(b), g.batBytes())
	}
	bat := make([]batEntry, g.totalEntries)
	for i := range bat {
		e := batEntry(le.Uint64(b[8*i:]))
		bat[i] = e
		if err := checkEntryState(e, int64(i), g, typ, off+8*int64(i)); err != nil {
			return nil, err
		}
	}
	return bat, nil
}

// checkEntryState checks the state of entry i.
func checkEntryState(e batEntry, i int64, g *geometry, typ vdisk.Type, off int64) error {
	s := e.state()
	if g.isBitmapIndex(i) {
		switch {
		case s == SBBlockNotPresent:
		case s == SBBlockPresent && typ == vdisk.TypeDifferencing:
		default:
			return corrupt("BAT", "State", off, "sector bitmap entry %d: state %d invalid for a %s disk", i, s, typ)
		}
		return nil
	}
	switch s {
	case BlockNotPresent, BlockUndefined, BlockZero, BlockUnmapped,
		blockUnmappedLegacy, BlockFullyPresent:
	case BlockPartiallyPresent:
		if typ != vdisk.TypeDifferencing {
			return corrupt("BAT", "State", off, "entry %d: partially present in a %s disk", i, typ)
		}
	default:
		return corrupt("BAT", "State", off, "entry %d: reserved state %d", i, s)
	}
	return nil
}

// encodeBAT returns the entries as bytes.
func encodeBAT(bat []batEntry) []byte {
	b := make([]byte, 8*len(bat))
	for i, e := range bat {
		le.PutUint64(b[8*i:], uint64(e))
	}
	return b
}

// bitSet reports whether bit n of the sector bitmap bm is set
// (least-significant bit first, FORMATS.md 3.7).
func bitSet(bm []byte, n int64) bool { return bm[n/8]>>(n%8)&1 != 0 }

// setBits sets bits [from, from+count) of bm.
func setBits(bm []byte, from, count int64) {
	for n := from; n < from+count; n++ {
		bm[n/8] |= 1 << (n % 8)
	}
}

// bitRun returns the length of the run of bits equal to bit from, from
// from, up to limit bits.
func bitRun(bm []byte, from, limit int64) (bool, int64) {
	v := bitSet(bm, from)
	n := int64(1)
	for from+n < limit && bitSet(bm, from+n) == v {
		n++
	}
	return v, n
}
