package vhdx

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// seedImage holds the raw structures of one real image, used to seed
// the fuzz targets.
type seedImage struct {
	name      string
	h1, h2    []byte
	rt        []byte
	metaTable []byte
	metaItems []byte // bytes after the table, up to the last item's end
	metaLen   uint32
	locator   []byte
	bat       []byte
	meta      Metadata
}

var (
	seedsOnce sync.Once
	seeds     []seedImage
)

// fuzzSeeds returns the structures of images we create (dynamic, fixed,
// differencing, 4096-byte sectors) and of the corpus VHDX files that are
// available (decompressed into a scratch directory and removed again).
// The corpus is optional here: plain `go test` runs the committed
// corpus and these seeds as unit tests.
func fuzzSeeds(tb testing.TB) []seedImage {
	seedsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vhdx-seeds")
		if err != nil {
			return
		}
		defer os.RemoveAll(dir)
		var paths []string
		for i, o := range []vdisk.CreateOptions{
			{Size: 100 * miB},
			{Type: vdisk.TypeFixed, Size: 20 * miB, BlockSize: miB},
			{Size: 64 * miB, LogicalSectorSize: 4096, BlockSize: 256 * miB},
		} {
			p := filepath.Join(dir, "c"+string(rune('0'+i))+".vhdx")
			d, err := Create(p, &o)
			if err != nil {
				continue
			}
			d.WriteAt([]byte{1, 2, 3}, 5*miB)
			d.Close()
			paths = append(paths, p)
		}
		child := filepath.Join(dir, "child.vhdx")
		if d, err := Create(child, &vdisk.CreateOptions{Parent: paths[0]}); err == nil {
			d.WriteAt([]byte{9}, 7*miB+512)
			d.Close()
			paths = append(paths, child)
		}
		corpus := filepath.Join(testutil.RepoRoot(), "..", "shared", "corpus")
		if v := os.Getenv("VHD_CORPUS"); v != "" {
			corpus = v
		}
		for _, name := range []string{"iotest-dynamic-1G.vhdx.bz2", "iotest-dirtylog-10G-4M.vhdx.bz2",
			"test-disk2vhd.vhdx.bz2", "img-1x1-512-gpt.vhdx.xz", "img-1x1-4096-gpt.vhdx.xz"} {
			src := filepath.Join(corpus, name)
			tool := map[string]string{".bz2": "bzip2", ".xz": "xz"}[filepath.Ext(name)]
			dst := filepath.Join(dir, name+".img")
			cmd := exec.Command("sh", "-c", tool+` -dc "$1" | dd of="$2" bs=64k conv=sparse status=none`, "sh", src, dst)
			if _, err := os.Stat(src); err != nil || cmd.Run() != nil {
				continue
			}
			paths = append(paths, dst)
		}
		for _, p := range paths {
			if s, ok := loadSeed(p); ok {
				seeds = append(seeds, s)
			}
		}
	})
	if len(seeds) == 0 {
		tb.Fatal("no fuzz seeds could be built")
	}
	return seeds
}

// loadSeed reads the structures of the file at p.
func loadSeed(p string) (seedImage, bool) {
	f, err := vdisk.OpenOSFile(p, true)
	if err != nil {
		return seedImage{}, false
	}
	defer f.Close()
	d, err := OpenFile(f, p, &vdisk.OpenOptions{ReadOnly: true, Parent: vdisk.ParentPolicy{AllowAbsolute: true}})
	if err != nil {
		return seedImage{}, false
	}
	defer func() { d.parent = nil }()
	read := func(off int64, n int) []byte {
		b := make([]byte, n)
		d.r.ReadAt(b, off)
		return b
	}
	s := seedImage{name: filepath.Base(p), meta: *d.meta}
	s.h1 = read(header1Offset, headerSize)
	s.h2 = read(header2Offset, headerSize)
	s.rt = read(regionTable1Offset, regionTableSize)
	mo := int64(d.metaRegion.FileOffset)
	s.metaTable = read(mo, metadataTableSize)
	t, _ := decodeMetadataTable(s.metaTable, mo, d.metaRegion.Length)
	end := uint32(metadataTableSize)
	for _, e := range t.Entries {
		end = max(end, e.Offset+e.Length)
		if e.ItemID == itemParentLocator {
			s.locator = read(mo+int64(e.Offset), int(e.Length))
		}
	}
	s.metaItems = read(mo+metadataTableSize, int(end-metadataTableSize))
	s.metaLen = d.metaRegion.Length
	s.bat = read(int64(d.batRegion.FileOffset), int(min(d.geo.batBytes(), 64*kiB)))
	return s, true
}

func FuzzHeaders(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.h1[:512], s.h2[:512])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		b1, b2 := pad(a, headerSize), pad(b, headerSize)
		// Re-checksum so that the field rules, not only the CRC, are
		// explored; the CRC check has its own tests.
		fixCRC(b1, 0, headerSize)
		if len(b)%2 == 0 {
			fixCRC(b2, 0, headerSize)
		}
		h, slot, err := chooseHeader(b1, b2)
		if err != nil {
			return
		}
		h.validate(slot, 1<<40)
		h2, err := decodeHeader(h.encode(), header1Offset)
		if err != nil || *h2 != *h {
			t.Fatalf("round trip: %+v -> %+v, %v", h, h2, err)
		}
	})
}

func FuzzRegionTable(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.rt[:16+32*3])
	}
	f.Fuzz(func(t *testing.T, a []byte) {
		b := pad(a, regionTableSize)
		fixCRC(b, 0, regionTableSize)
		rt, err := decodeRegionTable(b, regionTable1Offset)
		if err != nil {
			return
		}
		rt.regions(regionTable1Offset)
		rt2, err := decodeRegionTable(rt.encode(), regionTable1Offset)
		if err != nil || !reflect.DeepEqual(rt, rt2) {
			t.Fatalf("round trip: %+v -> %+v, %v", rt, rt2, err)
		}
	})
}

func FuzzMetadata(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		n := 32 + 32*int(le.Uint16(s.metaTable[10:]))
		f.Add(s.metaTable[:n], s.metaItems, s.metaLen)
	}
	f.Fuzz(func(t *testing.T, tab, items []byte, regionLen uint32) {
		if len(items) > maxMetadataItem {
			return
		}
		region := append(pad(tab, metadataTableSize), items...)
		mt, err := decodeMetadataTable(region[:metadataTableSize], 0, regionLen)
		if err != nil {
			return
		}
		m, err := decodeMetadata(mt, 0, func(e MetadataTableEntry) ([]byte, error) {
			if uint64(e.Offset)+uint64(e.Length) > uint64(len(region)) {
				return nil, corrupt("metadata item", "", int64(e.Offset), "beyond the input")
			}
			return region[e.Offset : e.Offset+e.Length], nil
		})
		if err != nil {
			return
		}
		g := newGeometry(m)
		if g.totalEntries <= 0 || g.chunkRatio <= 0 {
			t.Fatalf("geometry %+v from valid metadata", g)
		}
		enc := encodeMetadataRegion(m)
		mt2, err := decodeMetadataTable(enc[:metadataTableSize], 0, uint32(len(enc)))
		if err != nil {
			t.Fatalf("re-decode table: %v", err)
		}
		m2, err := decodeMetadata(mt2, 0, func(e MetadataTableEntry) ([]byte, error) {
			return enc[e.Offset : e.Offset+e.Length], nil
		})
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %+v -> %+v, %v", m, m2, err)
		}
	})
}

func FuzzParentLocator(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if s.locator != nil {
			f.Add(s.locator)
		}
	}
	f.Add((&ParentLocator{Type: locatorTypeVHDX, Entries: []KeyValue{
		{"parent_linkage", "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}"},
		{"relative_path", `..\..\path2\sub3\parent.vhdx`},
		{"volume_path", `\\?\Volume{26A21BDA-A627-11D7-9931-806E6F6E6963}\path2\sub3\parent.vhdx`},
		{"absolute_win32_path", `\\?\d:\path2\sub3\parent.vhdx`},
	}}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		pl, err := decodeParentLocator(b, 0)
		if err != nil {
			return
		}
		if v, _ := pl.Get("parent_linkage"); v != "" {
			parseLinkage(v)
		}
		parentCandidates(pl, "/x/child.vhdx", vdisk.ParentPolicy{AllowAbsolute: true})
		pl2, err := decodeParentLocator(pl.encode(), 0)
		if err != nil || !reflect.DeepEqual(pl, pl2) {
			t.Fatalf("round trip: %+v -> %+v, %v", pl, pl2, err)
		}
	})
}

func FuzzBAT(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.bat, s.meta.VirtualDiskSize, s.meta.BlockSize, s.meta.LogicalSectorSize == 4096, s.meta.HasParent, s.meta.LeaveBlockAllocated)
	}
	f.Fuzz(func(t *testing.T, b []byte, size uint64, bs uint32, big, parent, fixed bool) {
		m := &Metadata{VirtualDiskSize: size, BlockSize: bs, LogicalSectorSize: 512,
			HasParent: parent, LeaveBlockAllocated: fixed}
		if big {
			m.LogicalSectorSize = 4096
		}
		if !validBlockSize(bs) || size == 0 || size > maxVirtualSize || size%uint64(m.LogicalSectorSize) != 0 {
			return
		}
		g := newGeometry(m)
		bat, err := decodeBAT(b, createBATOffset, &g, m.Type())
		if err != nil {
			return
		}
		if got := encodeBAT(bat); string(got) != string(b[:g.batBytes()]) {
			t.Fatal("BAT round trip differs")
		}
		// The engine's block checks on the decoded BAT.
		d := &Disk{geo: g, bat: bat, typ: m.Type(), fileSize: 1 << 30,
			rt: &RegionTable{}, batRegion: RegionTableEntry{FileOffset: createBATOffset}}
		d.checkBlocks()
	})
}

// pad returns b copied into a buffer of n bytes (cut or zero padded).
func pad(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// TestSeedsDecode makes sure every seed decodes: a seed that does not
// would only exercise the error paths.
func TestSeedsDecode(t *testing.T) {
	for _, s := range fuzzSeeds(t) {
		if _, _, err := chooseHeader(s.h1, s.h2); err != nil {
			t.Errorf("%s: headers: %v", s.name, err)
		}
		if _, err := decodeRegionTable(s.rt, regionTable1Offset); err != nil {
			t.Errorf("%s: region table: %v", s.name, err)
		}
		if _, err := decodeMetadataTable(s.metaTable, 0, s.metaLen); err != nil {
			t.Errorf("%s: metadata: %v", s.name, err)
		}
	}
}
