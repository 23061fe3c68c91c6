package vhd1

import (
	"bytes"
	"io"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// corpusVHDs are the VHDs of ../shared/corpus with the facts of its
// MANIFEST.md.
var corpusVHDs = []struct {
	name      string
	typ       vdisk.Type
	size      int64
	sha       string // "" for the huge all-zero disks
	allocated int    // allocated blocks (dynamic)
}{
	{"hyperv2012r2-dynamic.vhd.bz2", vdisk.TypeDynamic, 136365211648, "", 0},
	{"virtualpc-dynamic.vhd.bz2", vdisk.TypeDynamic, 136365211648, "", 0},
	{"d2v-zerofilled.vhd.bz2", vdisk.TypeDynamic, 263454720,
		"1ba076be94a8a64541c25aae8d5a5f8b0da758c3797af597e03acb431ff8d143", 126},
	{"vhd_fixed_small.vhd.xz", vdisk.TypeFixed, 3145728,
		"0d75b4c53a0f40b4518cc20282b9901d76fdee0e205ac9925243861c775bba51", 0},
	{"win7dyn.vhd.xz", vdisk.TypeDynamic, 209715200,
		"3ac5dc41804dcf5f89f6b110abfa9a5a9b808ae281a7ca3bbb44bf65ecf422c2", 6},
	{"du.vhd.xz", vdisk.TypeDynamic, 3145728,
		"bbd05cf6097ac9b1f89ea29d2542c1b7b67ee46848393895f5a9e43fa1f621e5", 0},
	{"img-1x1-512-gpt.vhd.xz", vdisk.TypeDynamic, 4352000,
		"c9c4e305b2b60c4379e1850f2c412d8b0717874b3d6e206354ebb9263db68c9b", 3},
	{"img-1x1-512-gpt.vhdf.xz", vdisk.TypeFixed, 5242880,
		"7bec1f3798a95e2b33eba7e24531bbe40958c8498fa30947a8fb057031908c68", 0},
}

func TestCorpus(t *testing.T) {
	for _, tc := range corpusVHDs {
		t.Run(tc.name, func(t *testing.T) {
			path := testutil.Corpus(t, tc.name)
			d := openRO(t, path)
			info := d.Info()
			if d.Size() != tc.size || info.VirtualSize != tc.size {
				t.Errorf("size %d, want %d", d.Size(), tc.size)
			}
			if info.Type != tc.typ {
				t.Errorf("type %v, want %v", info.Type, tc.typ)
			}
			if tc.typ == vdisk.TypeDynamic {
				if got := info.AllocatedBytes / int64(info.BlockSize); got != int64(tc.allocated) {
					t.Errorf("%d blocks allocated, want %d", got, tc.allocated)
				}
			}
			if tc.sha != "" {
				if got := contentSHA256(t, d); got != tc.sha {
					t.Errorf("content sha256 %s, want %s", got, tc.sha)
				}
			} else {
				checkHugeEmpty(t, d)
			}
			checkClean(t, path, nil)
		})
	}
}

// checkHugeEmpty checks a huge all-zero disk without reading it all:
// nothing allocated, zeros at several offsets, EOF at the end.
func checkHugeEmpty(t *testing.T, d *Disk) {
	t.Helper()
	es, err := d.Map(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].State != vdisk.Unallocated || es[0].Length != d.Size() {
		t.Errorf("Map = %+v, want one unallocated extent", es)
	}
	buf := make([]byte, 1<<16)
	for _, off := range []int64{0, 1 << 30, d.Size() / 2, 100 << 30, d.Size() - int64(len(buf))} {
		for i := range buf {
			buf[i] = 0xAA
		}
		if n, err := d.ReadAt(buf, off); n != len(buf) || err != nil {
			t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
		}
		if !isZero(buf) {
			t.Errorf("non-zero bytes at %d", off)
		}
	}
	if n, err := d.ReadAt(buf, d.Size()-512); n != 512 || err != io.EOF {
		t.Errorf("ReadAt across the end = %d, %v; want 512, EOF", n, err)
	}
}

// TestCorpusDetails checks what Info shows for the real files:
// geometry, CHS size, creator, and the reserved footer bytes.
func TestCorpusDetails(t *testing.T) {
	t.Run("hyperv geometry", func(t *testing.T) {
		d := openRO(t, testutil.Corpus(t, "hyperv2012r2-dynamic.vhd.bz2"))
		det := detailMap(d.Info())
		if det["geometry"] != "65278/16/255" || det["chs_size"] != int64(136363130880) {
			t.Errorf("geometry %v, chs_size %v", det["geometry"], det["chs_size"])
		}
		if det["creator_application"] != "win " || det["creator_version"] != "6.3" {
			t.Errorf("creator %q %q", det["creator_application"], det["creator_version"])
		}
		if g := CHS(d.Size()); g != d.Footer().Geometry {
			t.Errorf("CHS(%d) = %v, file has %v", d.Size(), g, d.Footer().Geometry)
		}
	})
	t.Run("fixed reserved bytes", func(t *testing.T) {
		path := testutil.Corpus(t, "vhd_fixed_small.vhd.xz")
		raw := fileBytes(t, path)
		d := openRO(t, path)
		f := d.Footer()
		if isZero(f.Reserved[:]) {
			t.Fatal("reserved bytes are zero; the corpus file has non-zero ones")
		}
		// Encoding the decoded footer gives back the exact bytes.
		if !bytes.Equal(f.Encode(), raw[len(raw)-512:]) {
			t.Error("Encode does not reproduce the footer")
		}
		// MBR partition at byte 65536, length 2031616 (MANIFEST).
		mbr := make([]byte, 512)
		d.ReadAt(mbr, 0)
		p := mbr[446:]
		if mbr[510] != 0x55 || mbr[511] != 0xAA ||
			le32(p[8:])*512 != 65536 || le32(p[12:])*512 != 2031616 {
			t.Errorf("MBR partition entry % x", p[:16])
		}
	})
	t.Run("win7dyn map", func(t *testing.T) {
		d := openRO(t, testutil.Corpus(t, "win7dyn.vhd.xz"))
		es, err := d.Map(0, d.Size())
		if err != nil {
			t.Fatal(err)
		}
		var data []int64
		for _, e := range es {
			if e.State == vdisk.Data {
				for o := e.Offset / (2 << 20); o < (e.End()+(2<<20)-1)/(2<<20); o++ {
					data = append(data, o*2)
				}
			}
		}
		// Blocks at 0, 32 MiB, 82..88 MiB, 198 MiB (MANIFEST).
		want := []int64{0, 32, 82, 84, 86, 198}
		if len(data) != len(want) {
			t.Fatalf("data blocks at MiB %v, want %v", data, want)
		}
		for i := range want {
			if data[i] != want[i] {
				t.Fatalf("data blocks at MiB %v, want %v", data, want)
			}
		}
	})
	t.Run("vhdf backup GPT", func(t *testing.T) {
		d := openRO(t, testutil.Corpus(t, "img-1x1-512-gpt.vhdf.xz"))
		// The backup GPT header is the last sector; a reader trusting
		// the CHS size (5222400) would cut it off.
		hdr := make([]byte, 512)
		if _, err := d.ReadAt(hdr, d.Size()-512); err != nil {
			t.Fatal(err)
		}
		if string(hdr[:8]) != "EFI PART" {
			t.Errorf("last sector starts % x, want the backup GPT header", hdr[:8])
		}
		if det := detailMap(d.Info()); det["chs_size"] != int64(5222400) {
			t.Errorf("chs_size %v, want 5222400", det["chs_size"])
		}
	})
	t.Run("du unknown creator", func(t *testing.T) {
		path := testutil.Corpus(t, "du.vhd.xz")
		d := openRO(t, path)
		if d.Info().FileSize != 2560 {
			t.Errorf("file size %d, want 2560", d.Info().FileSize)
		}
		if det := detailMap(d.Info()); det["creator_application"] != "dutl" {
			t.Errorf("creator %v", det["creator_application"])
		}
	})
}

func detailMap(info vdisk.Info) map[string]any {
	m := map[string]any{}
	for _, f := range info.Details {
		m[f.Key] = f.Value
	}
	return m
}

func le32(b []byte) int64 {
	return int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16 | int64(b[3])<<24
}
