package vhd1

// DecodeBAT decodes Block Allocation Table entries: big-endian uint32
// sector numbers, 0xFFFFFFFF for an unallocated block (FORMATS.md 2.7).
// A trailing partial entry is ignored.
func DecodeBAT(b []byte) []uint32 {
	bat := make([]uint32, len(b)/4)
	for i := range bat {
		bat[i] = be.Uint32(b[4*i:])
	}
	return bat
}

// EncodeBAT encodes entries padded to a whole sector with 0xFF, as
// qemu pads (FORMATS.md 2.7).
func EncodeBAT(bat []uint32) []byte {
	n := (len(bat)*4 + SectorSize - 1) / SectorSize * SectorSize
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xFF
	}
	for i, e := range bat {
		be.PutUint32(b[4*i:], e)
	}
	return b
}

// Unallocated is the BAT entry of a block that is not allocated.
const Unallocated = unused
