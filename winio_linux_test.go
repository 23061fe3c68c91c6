package vhd

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vhdkit/vhd/internal/attach"
	"github.com/vhdkit/vhd/internal/testutil"
)

// Attach tests need root, loop devices, FUSE and e2fsprogs. Each test
// creates its disks in a temporary directory, keeps its attach state in
// another (VHD_RUN_DIR) and checks in t.Cleanup that no loop device,
// FUSE server or mount of its own is left.

// winioNeedAttach skips (fails under CI=true) when attaching cannot be
// tested here, and isolates the attach state in a temporary directory.
func winioNeedAttach(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Missing(t, "attaching needs root")
	}
	for _, p := range []string{"/dev/loop-control", "/dev/fuse"} {
		if _, err := os.Stat(p); err != nil {
			testutil.Missing(t, "attaching needs %s: %v", p, err)
		}
	}
	testutil.Tool(t, "fusermount3")
	testutil.Tool(t, "mkfs.ext4")
	testutil.Tool(t, "debugfs")
	run := t.TempDir()
	t.Setenv("VHD_RUN_DIR", run)
	t.Cleanup(func() { winioAssertNothingLeft(t, run) })
}

// winioAssertNothingLeft fails t if a loop device still has a backing
// file under the test's directories or a mount under run remains.
func winioAssertNothingLeft(t *testing.T, run string) {
	t.Helper()
	ms, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, m := range ms {
		b, _ := os.ReadFile(m)
		if strings.HasPrefix(string(b), os.TempDir()) && strings.Contains(string(b), t.Name()) ||
			strings.HasPrefix(string(b), run) {
			t.Errorf("left attached: %s -> %s", m, strings.TrimSpace(string(b)))
		}
	}
	mounts, _ := os.ReadFile("/proc/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, run) || strings.Contains(line, "/"+strings.ReplaceAll(t.Name(), "/", "_")) {
			t.Errorf("left mounted: %s", line)
		}
	}
}

// winioAttached attaches path with AttachVhd (or read-only through a
// handle) and returns its device; t.Cleanup detaches it if the test did
// not.
func winioAttached(t *testing.T, path string, readOnly bool) string {
	t.Helper()
	if readOnly {
		h, err := OpenVirtualDisk(path, VirtualDiskAccessNone, OpenVirtualDiskFlagNone)
		if err != nil {
			t.Fatal(err)
		}
		err = AttachVirtualDisk(h, AttachVirtualDiskFlagReadOnly|AttachVirtualDiskFlagPermanentLifetime, nil)
		CloseHandle(h)
		if err != nil {
			t.Fatal(err)
		}
	} else if err := AttachVhd(path); err != nil {
		t.Fatal(err)
	}
	h, err := OpenVirtualDisk(path, VirtualDiskAccessNone, OpenVirtualDiskFlagNone)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseHandle(h)
	dev, err := GetVirtualDiskPhysicalPath(h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("device %q is not a loop device", dev)
	}
	t.Logf("%s attached as %s", filepath.Base(path), dev)
	t.Cleanup(func() {
		if _, err := attach.Find(path); err == nil {
			if err := DetachVhd(path); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return dev
}

// winioFiles is what the tests store on the file systems they make.
type winioFiles map[string][]byte

func winioNewFiles(t *testing.T, prefix string) winioFiles {
	big := make([]byte, 3<<20+777) // spans several 1 MiB blocks
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	return winioFiles{
		prefix + "hello.txt": []byte("hello from " + prefix + "\n"),
		prefix + "big.bin":   big,
	}
}

// winioMountAndWrite mounts dev (making an ext4 file system first when
// mkfs is set), writes files and unmounts.
func winioMountAndWrite(t *testing.T, dev string, mkfs bool, files winioFiles) {
	t.Helper()
	if mkfs {
		testutil.Run(t, "mkfs.ext4", "-q", "-F", "-E", "nodiscard", dev)
	}
	mnt := t.TempDir()
	if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(mnt, 0)
		}
	}()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(mnt, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Detaching a mounted device is refused.
	if err := DetachVhd(winioBacking(t, dev)); !errors.Is(err, unix.EBUSY) {
		t.Errorf("detach while mounted = %v, want EBUSY", err)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	mounted = false
}

// winioBacking returns the disk path recorded for dev.
func winioBacking(t *testing.T, dev string) string {
	t.Helper()
	st, err := attach.Find(dev)
	if err != nil {
		t.Fatal(err)
	}
	return st.Path
}

// winioCheckFiles checks with debugfs that the ext4 image img holds
// files.
func winioCheckFiles(t *testing.T, img string, files winioFiles) {
	t.Helper()
	for name, want := range files {
		out := filepath.Join(t.TempDir(), "dump")
		testutil.Run(t, "debugfs", "-R", "dump /"+name+" "+out, img)
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("debugfs dump of %s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes read back, want %d (content differs)", name, len(got), len(want))
		}
	}
}

// winioQemuRaw converts disk to raw with qemu-img.
func winioQemuRaw(t *testing.T, disk, format string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "qemu.raw")
	testutil.Run(t, "qemu-img", "convert", "-f", format, "-O", "raw", disk, out)
	return out
}

// winioOurRaw converts disk to raw with this package.
func winioOurRaw(t *testing.T, disk string) string {
	t.Helper()
	d, err := Open(disk, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out := filepath.Join(t.TempDir(), "ours.raw")
	if err := Convert(context.Background(), d, out, &ConvertOptions{Format: FormatRaw, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAttachFileSystem attaches a dynamic VHDX and a dynamic VHD, makes
// an ext4 file system through the device, and checks the files in the
// detached disk with qemu-img and debugfs.
func TestAttachFileSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("attach tests make file systems; skipped with -short")
	}
	winioNeedAttach(t)
	for _, c := range []struct {
		format Format
		ext    string
		qemu   string
	}{
		{FormatVHDX, ".vhdx", "vhdx"},
		{FormatVHD, ".vhd", "vpc"},
	} {
		t.Run(c.qemu, func(t *testing.T) {
			winioNeedFormat(t, c.format)
			path := filepath.Join(t.TempDir(), "disk"+c.ext)
			d, err := Create(path, c.format, &CreateOptions{Type: TypeDynamic, Size: 64 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			dev := winioAttached(t, path, false)
			files := winioNewFiles(t, "")
			winioMountAndWrite(t, dev, true, files)
			if err := DetachVhd(path); err != nil {
				t.Fatal(err)
			}
			if _, err := attach.Find(path); err == nil {
				t.Fatal("still attached after DetachVhd")
			}
			d, err = Open(path, &OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatalf("reopen after detach: %v", err)
			}
			d.Close()
			winioCheckFiles(t, winioQemuRaw(t, path, c.qemu), files)
		})
	}
}

// TestAttachDifferencing writes a file system to a VHDX parent, then
// more files through a differencing child made by CreateDiffVhd; the
// child holds both sets (read with this package), the parent only the
// first (read with qemu-img).
func TestAttachDifferencing(t *testing.T) {
	if testing.Short() {
		t.Skip("attach tests make file systems; skipped with -short")
	}
	winioNeedAttach(t)
	winioNeedFormat(t, FormatVHDX)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.vhdx")
	child := filepath.Join(dir, "child.vhdx")
	d, err := Create(base, FormatVHDX, &CreateOptions{Size: 64 << 20, BlockSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	first := winioNewFiles(t, "base-")
	dev := winioAttached(t, base, false)
	winioMountAndWrite(t, dev, true, first)
	if err := DetachVhd(dev); err != nil { // by device this time
		t.Fatal(err)
	}

	if err := CreateDiffVhd(child, base, 1); err != nil {
		t.Fatal(err)
	}
	second := winioNewFiles(t, "child-")
	dev = winioAttached(t, child, false)
	winioMountAndWrite(t, dev, false, second)
	if err := DetachVhd(child); err != nil {
		t.Fatal(err)
	}

	all := winioFiles{}
	for k, v := range first {
		all[k] = v
	}
	for k, v := range second {
		all[k] = v
	}
	winioCheckFiles(t, winioOurRaw(t, child), all)
	parentRaw := winioQemuRaw(t, base, "vhdx")
	winioCheckFiles(t, parentRaw, first)
	out, _ := exec.Command("debugfs", "-R", "ls /", parentRaw).CombinedOutput()
	if bytes.Contains(out, []byte("child-hello.txt")) {
		t.Errorf("parent holds a file written through the child:\n%s", out)
	}
}

// TestAttachReadOnly: a read-only attach refuses writes to the device.
func TestAttachReadOnly(t *testing.T) {
	winioNeedAttach(t)
	winioNeedFormat(t, FormatVHDX)
	path := filepath.Join(t.TempDir(), "ro.vhdx")
	if err := CreateVhdx(path, 1, 1); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dev := winioAttached(t, path, true)
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt(make([]byte, 4096), 0)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
	}
	if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		t.Errorf("write to read-only device: %v, want EROFS, EPERM or EACCES", err)
	}
	t.Logf("write refused: %v", err)
	rf, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rf.ReadAt(make([]byte, 4096), 1<<29); err != nil {
		t.Errorf("read from read-only device: %v", err)
	}
	rf.Close()
	if err := DetachVhd(path); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a read-only attach changed the disk file")
	}
}

// TestAttachHandleLifetime: without PermanentLifetime the attach ends
// with the handle, as on Windows; a second attach is refused.
func TestAttachHandleLifetime(t *testing.T) {
	winioNeedAttach(t)
	winioNeedFormat(t, FormatVHDX)
	path := filepath.Join(t.TempDir(), "h.vhdx")
	if err := CreateVhdx(path, 1, 1); err != nil {
		t.Fatal(err)
	}
	h, err := OpenVirtualDisk(path, VirtualDiskAccessNone, OpenVirtualDiskFlagNone)
	if err != nil {
		t.Fatal(err)
	}
	if err := AttachVirtualDisk(h, AttachVirtualDiskFlagNone, nil); err != nil {
		CloseHandle(h)
		t.Fatal(err)
	}
	dev, err := GetVirtualDiskPhysicalPath(h)
	if err != nil {
		t.Error(err)
	}
	if err := AttachVhd(path); err == nil || !errors.Is(err, os.ErrExist) {
		t.Errorf("second attach = %v, want ErrExist", err)
	}
	if err := CloseHandle(h); err != nil {
		t.Fatal(err)
	}
	if st, err := attach.Find(path); err == nil {
		t.Errorf("%s still attached as %s after CloseHandle", path, st.Device)
	} else if _, err := os.Stat("/sys/block/" + filepath.Base(dev) + "/loop/backing_file"); err == nil {
		t.Errorf("%s still configured", dev)
	}
}

// TestAttachFixedDirect: a fixed VHD is looped directly on its file,
// with the footer out of view, and a restricted range is honoured.
func TestAttachFixedDirect(t *testing.T) {
	winioNeedAttach(t)
	winioNeedFormat(t, FormatVHD)
	path := filepath.Join(t.TempDir(), "fixed.vhd")
	d, err := Create(path, FormatVHD, &CreateOptions{Type: TypeFixed, Size: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("block one"), 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := OpenVirtualDisk(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseHandle(h)
	p := AttachVirtualDiskParameters{Version: 2, Version2: AttachVersion2{RestrictedOffset: 1 << 20, RestrictedLength: 2 << 20}}
	if err := AttachVirtualDisk(h, AttachVirtualDiskFlagRestrictedRange, &p); err != nil {
		t.Fatal(err)
	}
	st, err := attach.Find(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Served {
		t.Error("a fixed VHD was served through FUSE, want a direct loop device")
	}
	size, _ := os.ReadFile("/sys/block/" + filepath.Base(st.Device) + "/size")
	if strings.TrimSpace(string(size)) != "4096" { // 2 MiB in sectors
		t.Errorf("device has %s sectors, want 4096", size)
	}
	f, err := os.Open(st.Device)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 9)
	_, err = f.ReadAt(b, 0)
	f.Close()
	if err != nil || string(b) != "block one" {
		t.Errorf("device starts with %q, %v", b, err)
	}
	if err := DetachVirtualDisk(h); err != nil {
		t.Fatal(err)
	}
}
