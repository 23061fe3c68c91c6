//go:build !windows

package vhd

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Microsoft/go-winio/pkg/guid"

	"github.com/vhdkit/vhd/internal/testutil"
)

// winioNeedFormat skips (or, under CI, fails) when the root package has
// no driver for f yet, so the gap shows in go test -v.
func winioNeedFormat(t *testing.T, f Format) {
	t.Helper()
	if _, err := driverFor(f); err != nil {
		testutil.Missing(t, "root package cannot handle %v disks yet: %v", f, err)
	}
}

// TestCreateVhdxQemu: go-winio's CreateVhdx(path, 1, 1) makes a 1 GiB
// dynamic VHDX with 1 MiB blocks that qemu-img checks clean.
func TestCreateVhdxQemu(t *testing.T) {
	winioNeedFormat(t, FormatVHDX)
	path := filepath.Join(t.TempDir(), "new.vhdx")
	if err := CreateVhdx(path, 1, 1); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "qemu-img", "check", "-f", "vhdx", path)
	out := testutil.Run(t, "qemu-img", "info", "--output=json", path)
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	if info.Format != "vhdx" || info.VirtualSize != 1<<30 {
		t.Errorf("qemu-img info: format %q size %d, want vhdx 1 GiB", info.Format, info.VirtualSize)
	}
	d, err := Open(path, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if i := d.Info(); i.Type != TypeDynamic || i.BlockSize != 1<<20 || i.VirtualSize != 1<<30 {
		t.Errorf("Info: type %v block %d size %d", i.Type, i.BlockSize, i.VirtualSize)
	}
}

// TestCreateVhdxByExtension: like VirtDisk, ".VHD" in any case makes a
// VHD, which the content detection then sees.
func TestCreateVhdxByExtension(t *testing.T) {
	winioNeedFormat(t, FormatVHD)
	path := filepath.Join(t.TempDir(), "UPPER.VHD")
	if err := CreateVhdx(path, 1, 2); err != nil {
		t.Fatal(err)
	}
	if f, err := DetectFile(path); err != nil || f != FormatVHD {
		t.Fatalf("DetectFile = %v, %v; want vhd", f, err)
	}
}

// TestBlockSizeOverflow: 4096 MiB does not fit VirtDisk's 32-bit block
// size; go-winio wrapped it to 0 (the default) silently.
func TestBlockSizeOverflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.vhdx")
	if err := CreateVhdx(path, 1, 4096); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("CreateVhdx(block 4096 MiB) = %v, want ErrInvalidArgument", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file created despite the error: %v", err)
	}
	if err := CreateDiffVhd(path, "parent.vhdx", 8192); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("CreateDiffVhd(block 8192 MiB) = %v, want ErrInvalidArgument", err)
	}
}

// TestCreateDiffVhd: the child reads through to the parent, and writes
// to the child leave the parent alone. The paths are relative to the
// working directory, as callers of go-winio often pass them, and the
// child is in another directory. The extension picks VHDX or VHD.
func TestCreateDiffVhd(t *testing.T) {
	for _, c := range []struct {
		format Format
		ext    string
		qemu   string
	}{{FormatVHDX, ".vhdx", "vhdx"}, {FormatVHD, ".vhd", "vpc"}} {
		t.Run(c.qemu, func(t *testing.T) {
			winioNeedFormat(t, c.format)
			t.Chdir(t.TempDir())
			if err := os.Mkdir("sub", 0o755); err != nil {
				t.Fatal(err)
			}
			base := "base" + c.ext
			child := filepath.Join("sub", "child"+c.ext)
			winioDiffChain(t, c.format, base, child)
			if c.format == FormatVHDX {
				testutil.Run(t, "qemu-img", "check", "-f", "vhdx", base)
			}
		})
	}
}

func winioDiffChain(t *testing.T, format Format, base, child string) {
	t.Helper()
	if err := CreateVhdx(base, 1, 2); err != nil {
		t.Fatal(err)
	}
	winioWriteAt(t, base, []byte("parent data"), 5<<20+3)
	if err := CreateDiffVhd(child, base, 2); err != nil {
		t.Fatal(err)
	}
	d, err := Open(child, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	if info.Format != format || info.Type != TypeDifferencing || info.Parent == nil || info.VirtualSize != 1<<30 {
		t.Errorf("child Info: %v %v parent %v size %d", info.Format, info.Type, info.Parent != nil, info.VirtualSize)
	}
	got := make([]byte, 11)
	if _, err := d.ReadAt(got, 5<<20+3); err != nil || string(got) != "parent data" {
		t.Errorf("child reads %q, %v; want the parent's data", got, err)
	}
	if _, err := d.WriteAt([]byte("child"), 5<<20+3); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := winioReadAt(t, child, 5<<20+3, 11); got != "childt data" {
		t.Errorf("child after write reads %q", got)
	}
	if got := winioReadAt(t, base, 5<<20+3, 11); got != "parent data" {
		t.Errorf("parent after child write reads %q", got)
	}
}

func winioWriteAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	d, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func winioReadAt(t *testing.T, path string, off int64, n int) string {
	t.Helper()
	d, err := Open(path, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := make([]byte, n)
	if _, err := d.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIdentifierVHD sets a VHD's Unique Id and reads it back through
// GetVirtualDiskIdentifier, Info and libvhdi's vhdiinfo.
func TestIdentifierVHD(t *testing.T) {
	winioNeedFormat(t, FormatVHD)
	for _, typ := range []Type{TypeDynamic, TypeFixed} {
		t.Run(typ.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id.vhd")
			d, err := Create(path, FormatVHD, &CreateOptions{Type: typ, Size: 8 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			want, err := guid.FromString("01234567-89ab-cdef-0011-223344556677")
			if err != nil {
				t.Fatal(err)
			}
			if err := SetVirtualDiskIdentifier(path, want); err != nil {
				t.Fatal(err)
			}
			assertIdentifier(t, path, want)
			// Both footers of a dynamic disk carry the new id.
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			wantRaw := want.ToArray()
			if string(raw[len(raw)-512+68:][:16]) != string(wantRaw[:]) {
				t.Error("end footer does not hold the id")
			}
			if typ == TypeDynamic && string(raw[68:84]) != string(wantRaw[:]) {
				t.Error("footer copy at offset 0 does not hold the id")
			}
			out := testutil.Run(t, "vhdiinfo", path)
			if !strings.Contains(strings.ToLower(string(out)), want.String()) {
				t.Errorf("vhdiinfo does not show %s:\n%s", want, out)
			}
		})
	}
}

// TestIdentifierVHDX reads a VHDX's Virtual Disk ID as Info shows it.
// libvhdi cannot confirm it (7-Zip can: TestSetIdentifierVHDX): vhdiinfo's "Identifier" of a VHDX is the header's
// DataWriteGuid (checked on a qemu-made file), not the Virtual Disk ID
// metadata item that VirtDisk's GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID
// (go-winio's choice for VHDX) returns.
func TestIdentifierVHDX(t *testing.T) {
	winioNeedFormat(t, FormatVHDX)
	path := filepath.Join(t.TempDir(), "id.vhdx")
	want, err := guid.FromString("76543210-ba98-fedc-0011-223344556677")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Create(path, FormatVHDX, &CreateOptions{Size: 8 << 20, ID: want})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	assertIdentifier(t, path, want)
}

// TestSetIdentifierVHDX sets a VHDX's Virtual Disk ID and reads it back
// with our reader and 7-Zip (whose "ID" is the item's 16 bytes in file
// order, the Windows mixed-endian form); qemu-img check stays clean.
func TestSetIdentifierVHDX(t *testing.T) {
	winioNeedFormat(t, FormatVHDX)
	path := filepath.Join(t.TempDir(), "id.vhdx")
	if err := CreateVhdx(path, 1, 1); err != nil {
		t.Fatal(err)
	}
	other := guid.GUID{Data1: 1, Data2: 2, Data3: 3}
	if err := SetVirtualDiskIdentifier(path, other); err != nil {
		t.Fatal(err)
	}
	assertIdentifier(t, path, other)
	raw := other.ToWindowsArray()
	want := "ID = " + hex.EncodeToString(raw[:])
	if out := testutil.Run(t, "7zz", "l", "-slt", path); !strings.Contains(strings.ToLower(string(out)), strings.ToLower(want)) {
		t.Errorf("7zz does not show %q:\n%s", want, out)
	}
	testutil.Run(t, "qemu-img", "check", "-f", "vhdx", path)
}

// TestHandles covers the handle table and parameter checks.
func TestHandles(t *testing.T) {
	winioNeedFormat(t, FormatVHDX)
	path := filepath.Join(t.TempDir(), "h.vhdx")
	h, err := CreateVirtualDisk(path, VirtualDiskAccessNone, CreateVirtualDiskFlagNone,
		&CreateVirtualDiskParameters{Version: 2, Version2: CreateVersion2{MaximumSize: 4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GetVirtualDiskPhysicalPath(h); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("physical path of a disk not attached: %v, want ErrNotExist", err)
	}
	if err := CloseHandle(h); err != nil {
		t.Fatal(err)
	}
	if err := CloseHandle(h); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("second CloseHandle = %v, want ErrInvalidArgument", err)
	}
	if err := AttachVirtualDisk(h, AttachVirtualDiskFlagNone, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("attach through a closed handle = %v", err)
	}

	h, err = OpenVirtualDisk(path, VirtualDiskAccessNone, OpenVirtualDiskFlagNone)
	if err != nil {
		t.Fatal(err)
	}
	CloseHandle(h)
	if _, err := OpenVirtualDisk(path+".missing", 0, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open of a missing disk = %v", err)
	}
	if _, err := OpenVirtualDiskWithParameters(path, 0, 0, &OpenVirtualDiskParameters{Version: 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("open with version 1 = %v, want ErrInvalidArgument", err)
	}
	if _, err := OpenVirtualDiskWithParameters(path, 0, 0, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("open with nil parameters = %v, want ErrInvalidArgument", err)
	}
	dir := t.TempDir()
	for name, c := range map[string]struct {
		flags CreateVirtualDiskFlag
		p     CreateVirtualDiskParameters
		want  error
	}{
		"nosize":   {0, CreateVirtualDiskParameters{Version: 2}, ErrInvalidArgument},
		"version1": {0, CreateVirtualDiskParameters{Version: 1, Version2: CreateVersion2{MaximumSize: 1 << 20}}, ErrInvalidArgument},
		"source":   {0, CreateVirtualDiskParameters{Version: 2, Version2: CreateVersion2{MaximumSize: 1 << 20, SourcePath: utf16Ptr(path)}}, errors.ErrUnsupported},
		"pmem":     {CreateVirtualDiskFlagPmemCompatible, CreateVirtualDiskParameters{Version: 2, Version2: CreateVersion2{MaximumSize: 1 << 20}}, errors.ErrUnsupported},
	} {
		p := filepath.Join(dir, name+".vhdx")
		if _, err := CreateVirtualDisk(p, 0, c.flags, &c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: CreateVirtualDisk = %v, want %v", name, err, c.want)
		}
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: file left behind", name)
		}
	}
}

func TestUTF16(t *testing.T) {
	for _, s := range []string{"", "C:\\disks\\base.vhdx", "/tmp/ünïcödé/𝄞.vhdx"} {
		if got := utf16PtrToString(utf16Ptr(s)); got != s {
			t.Errorf("round trip of %q gave %q", s, got)
		}
	}
}

// ExampleCreateVhdx creates a disk with the go-winio call and reads it
// back with this package.
func ExampleCreateVhdx() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "scratch.vhdx")

	// 1 GiB, 1 MiB blocks: the call hcsshim makes for scratch disks.
	if err := CreateVhdx(path, 1, 1); err != nil {
		fmt.Println(err)
		return
	}
	d, err := Open(path, &OpenOptions{ReadOnly: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	i := d.Info()
	fmt.Println(i.Format, i.Type, i.VirtualSize, i.BlockSize)
	// Output: vhdx dynamic 1073741824 1048576
}

// assertIdentifier checks the identifier of the disk at path through
// GetVirtualDiskIdentifier and Info.
func assertIdentifier(t *testing.T, path string, want guid.GUID) {
	t.Helper()
	got, err := GetVirtualDiskIdentifier(path)
	if err != nil || got != want {
		t.Fatalf("GetVirtualDiskIdentifier = %v, %v; want %v", got, err, want)
	}
	d, err := Open(path, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	id := d.Info().ID
	d.Close()
	if id != want.String() {
		t.Errorf("Info().ID = %s, want %s", id, want)
	}
}
