package vhdx

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// TestGUIDLayout checks the mixed-endian layout of FORMATS.md 1.2.
func TestGUIDLayout(t *testing.T) {
	if got := hex.EncodeToString(regionBAT[:]); got != "6677c22d23f600429d64115e9bfd4a08" {
		t.Errorf("BAT region GUID bytes %s", got)
	}
	if got := regionBAT.String(); got != "2dc27766-f623-4200-9d64-115e9bfd4a08" {
		t.Errorf("text %s", got)
	}
	g, err := parseLinkage("{2DC27766-F623-4200-9D64-115E9BFD4A08}")
	if err != nil || g != regionBAT {
		t.Errorf("parse linkage: %s, %v", g, err)
	}
	if got := linkageText(regionBAT); got != "{2dc27766-f623-4200-9d64-115e9bfd4a08}" {
		t.Errorf("linkage text %s", got)
	}
	for _, bad := range []string{"", "{}", "{2DC27766-F623-4200-9D64-115E9BFD4A0}", "{2DC27766+F623-4200-9D64-115E9BFD4A08}"} {
		if _, err := parseLinkage(bad); err == nil {
			t.Errorf("parse %q: no error", bad)
		}
	}
}

// TestGeometry checks the BAT figures of FORMATS.md 3.6.
func TestGeometry(t *testing.T) {
	ratios := map[[2]uint32]int64{
		{512, miB}: 4096, {512, 2 * miB}: 2048, {512, 8 * miB}: 512, {512, 32 * miB}: 128, {512, 256 * miB}: 16,
		{4096, miB}: 32768, {4096, 2 * miB}: 16384, {4096, 8 * miB}: 4096, {4096, 32 * miB}: 1024, {4096, 256 * miB}: 128,
	}
	for k, want := range ratios {
		g := newGeometry(&Metadata{LogicalSectorSize: k[0], BlockSize: k[1], VirtualDiskSize: 10 * miB})
		if g.chunkRatio != want {
			t.Errorf("sector %d block %d: chunk ratio %d, want %d", k[0], k[1], g.chunkRatio, want)
		}
	}
	// Virtual offset 4 GiB with 1 MiB blocks is block 4096 at index 4097;
	// index 4096 is chunk 0's bitmap entry.
	g := newGeometry(&Metadata{LogicalSectorSize: 512, BlockSize: miB, VirtualDiskSize: 8 << 30})
	if g.payloadIndex(4096) != 4097 || g.bitmapIndex(0) != 4096 || !g.isBitmapIndex(4096) || g.isBitmapIndex(4097) {
		t.Error("chunk interleave")
	}
	// 64 TiB with 256 MiB blocks: 278,527 entries, a 3 MiB region.
	g = newGeometry(&Metadata{LogicalSectorSize: 512, BlockSize: 256 * miB, VirtualDiskSize: maxVirtualSize})
	if g.totalEntries != 278527 || roundUp(g.batBytes(), miB) != 3*miB {
		t.Errorf("64 TiB: %d entries, %d bytes", g.totalEntries, g.batBytes())
	}
	d := newGeometry(&Metadata{LogicalSectorSize: 512, BlockSize: 32 * miB, VirtualDiskSize: 10 << 30, HasParent: true})
	if d.totalEntries != 3*129 {
		t.Errorf("differencing 10 GiB: %d entries, want %d", d.totalEntries, 3*129)
	}
}

// TestBATEntry decodes the worked example of FORMATS.md 3.6.
func TestBATEntry(t *testing.T) {
	e := batEntry(le.Uint64([]byte{0x06, 0x00, 0x80, 0, 0, 0, 0, 0}))
	if e.state() != BlockFullyPresent || e.offset() != 8*miB {
		t.Errorf("state %s offset %d", e.state(), e.offset())
	}
	if makeEntry(BlockFullyPresent, 8*miB) != e {
		t.Error("makeEntry")
	}
}

// TestSectorBitmap checks the least-significant-bit-first order of
// FORMATS.md 3.7.
func TestSectorBitmap(t *testing.T) {
	bm := make([]byte, 4)
	setBits(bm, 3, 7) // sectors 3..9
	if !bytes.Equal(bm, []byte{0xf8, 0x03, 0, 0}) {
		t.Errorf("bits % x", bm)
	}
	if v, n := bitRun(bm, 0, 32); v || n != 3 {
		t.Errorf("run at 0: %t %d", v, n)
	}
	if v, n := bitRun(bm, 3, 32); !v || n != 7 {
		t.Errorf("run at 3: %t %d", v, n)
	}
	if v, n := bitRun(bm, 10, 20); v || n != 10 {
		t.Errorf("run at 10: %t %d", v, n)
	}
}

// TestChooseHeader covers the current-header rules of FORMATS.md 3.3.
func TestChooseHeader(t *testing.T) {
	h := func(seq uint64, mod func(*Header)) []byte {
		x := &Header{SequenceNumber: seq, Version: 1, LogOffset: miB, LogLength: miB}
		x.DataWriteGUID[0] = byte(seq)
		if mod != nil {
			mod(x)
		}
		return x.encode()
	}
	bad := func(b []byte) []byte { b = append([]byte(nil), b...); b[4]++; return b }
	cases := []struct {
		name   string
		b1, b2 []byte
		slot   int
		err    bool
	}{
		{"newer 1", h(5, nil), h(4, nil), 0, false},
		{"newer 2", h(5, nil), h(6, nil), 1, false},
		{"only 1 valid", h(5, nil), bad(h(9, nil)), 0, false},
		{"only 2 valid", bad(h(9, nil)), h(2, nil), 1, false},
		{"none valid", bad(h(1, nil)), bad(h(2, nil)), 0, true},
		{"version 2 skipped", h(9, func(x *Header) { x.Version = 2 }), h(2, nil), 1, false},
		{"equal identical", h(3, nil), h(3, nil), 0, false},
		{"equal different", h(3, nil), h(3, func(x *Header) { x.LogLength = 2 * miB }), 0, true},
	}
	for _, c := range cases {
		_, slot, err := chooseHeader(c.b1, c.b2)
		if (err != nil) != c.err || err == nil && slot != c.slot {
			t.Errorf("%s: slot %d, %v", c.name, slot, err)
		}
		if err != nil && !errors.Is(err, vdisk.ErrCorrupt) {
			t.Errorf("%s: untyped %v", c.name, err)
		}
	}
	// LogVersion must be 0 unless LogGuid is zero.
	x := &Header{Version: 1, LogVersion: 1, LogOffset: miB, LogLength: miB}
	if err := x.validate(0, 4*miB); err != nil {
		t.Errorf("log version with zero log guid: %v", err)
	}
	x.LogGUID[0] = 1
	if err := x.validate(0, 4*miB); !errors.Is(err, vdisk.ErrCorrupt) {
		t.Errorf("log version with log guid: %v", err)
	}
}

// TestParentLocatorLayout checks the layout of FORMATS.md 3.9: strings
// follow the entries, so with 5 pairs the first key is at 80.
func TestParentLocatorLayout(t *testing.T) {
	pl := &ParentLocator{Type: locatorTypeVHDX, Entries: []KeyValue{
		{"parent_linkage", "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}"},
		{"parent_linkage2", "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfc}"},
		{"relative_path", `..\p.vhdx`},
		{"volume_path", `\\?\Volume{26A21BDA-A627-11D7-9931-806E6F6E6963}\p.vhdx`},
		{"absolute_win32_path", `\\?\d:\p.vhdx`},
	}}
	b := pl.encode()
	if le.Uint32(b[20:]) != 80 || le.Uint16(b[28:]) != 28 || le.Uint16(b[30:]) != 76 {
		t.Errorf("first entry: key at %d, key length %d, value length %d", le.Uint32(b[20:]), le.Uint16(b[28:]), le.Uint16(b[30:]))
	}
	got, err := decodeParentLocator(b, 0)
	if err != nil || len(got.Entries) != 5 {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	// Duplicate keys and a missing parent_linkage are corrupt.
	dup := &ParentLocator{Type: locatorTypeVHDX, Entries: []KeyValue{
		{"parent_linkage", "x"}, {"parent_linkage", "y"}, {"relative_path", "p"}}}
	if _, err := decodeParentLocator(dup.encode(), 0); !errors.Is(err, vdisk.ErrCorrupt) {
		t.Errorf("duplicate key: %v", err)
	}
	none := &ParentLocator{Type: locatorTypeVHDX, Entries: []KeyValue{{"relative_path", "p"}}}
	if _, err := decodeParentLocator(none.encode(), 0); !errors.Is(err, vdisk.ErrCorrupt) {
		t.Errorf("no parent_linkage: %v", err)
	}
	// Candidates: relative first, absolute ones only when allowed.
	c := parentCandidates(got, "/a/b/child.vhdx", vdisk.ParentPolicy{})
	if len(c) != 2 || c[0] != "/a/p.vhdx" || c[1] != "/a/b/p.vhdx" {
		t.Errorf("candidates %q", c)
	}
	c = parentCandidates(got, "/a/b/child.vhdx", vdisk.ParentPolicy{AllowAbsolute: true})
	if len(c) != 4 || c[3] != "d:/p.vhdx" {
		t.Errorf("candidates with absolute %q", c)
	}
}
