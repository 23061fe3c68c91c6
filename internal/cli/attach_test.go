package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Microsoft/go-winio/pkg/guid"
	"github.com/spf13/cobra"

	"github.com/vhdkit/vhd"
	"github.com/vhdkit/vhd/internal/testutil"
)

// TestCLIHelperProcess is not a test: run by cliInProcess in a child
// process, it executes one of this file's commands there and exits, so
// that an attach can be seen to outlive the command's process.
func TestCLIHelperProcess(t *testing.T) {
	args := os.Getenv("VHD_CLI_HELPER_ARGS")
	if args == "" {
		t.Skip("helper process only")
	}
	a := strings.Split(args, "\x1f")
	var c *cobra.Command
	switch a[0] {
	case "attach":
		c = newAttachCmd()
	case "detach":
		c = newDetachCmd()
	case "id":
		c = newIDCmd()
	}
	c.SetArgs(a[1:])
	c.SilenceUsage = true
	if err := c.Execute(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// cliProcess runs "vhd ARGS..." in a separate process and returns its
// stdout.
func cliProcess(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLIHelperProcess$")
	cmd.Env = append(os.Environ(), "VHD_CLI_HELPER_ARGS="+strings.Join(args, "\x1f"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		t.Logf("vhd %v: %v\n%s", args, err, errb.String())
	}
	return strings.TrimSpace(out.String()), err
}

// cliRun runs a command in this process.
func cliRun(t *testing.T, c *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&out)
	c.SilenceUsage = true
	c.SilenceErrors = true
	err := c.Execute()
	return strings.TrimSpace(out.String()), err
}

func cliNeedAttach(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Missing(t, "attaching needs root")
	}
	for _, p := range []string{"/dev/loop-control", "/dev/fuse"} {
		if _, err := os.Stat(p); err != nil {
			testutil.Missing(t, "attaching needs %s: %v", p, err)
		}
	}
	run := t.TempDir()
	t.Setenv("VHD_RUN_DIR", run)
	// Registered first, so it runs after the tests' own detaches.
	t.Cleanup(func() {
		ms, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
		for _, m := range ms {
			b, _ := os.ReadFile(m)
			if strings.Contains(string(b), "/"+t.Name()) || strings.HasPrefix(string(b), run) {
				t.Errorf("left attached: %s -> %s", m, bytes.TrimSpace(b))
			}
		}
		mounts, _ := os.ReadFile("/proc/mounts")
		if bytes.Contains(mounts, []byte(run)) {
			t.Errorf("left mounted under %s:\n%s", run, mounts)
		}
	})
}

func cliNewVHDX(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.vhdx")
	d, err := vhd.Create(path, vhd.FormatVHDX, &vhd.CreateOptions{Size: 16 << 20, BlockSize: 1 << 20})
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			testutil.Missing(t, "root package cannot create VHDX yet: %v", err)
		}
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAttachCommand: "vhd attach" prints a device that stays attached
// after its process exits; writes through it land in the disk after
// "vhd detach DEVICE".
func TestAttachCommand(t *testing.T) {
	cliNeedAttach(t)
	path := cliNewVHDX(t)
	dev, err := cliProcess(t, "attach", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vhd.DetachVhd(path) })
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("attach printed %q, want a loop device", dev)
	}
	// The attaching process is gone; the device still serves the disk.
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("written through the device"), 3<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cliProcess(t, "attach", path); err == nil {
		t.Error("second attach of the same disk succeeded")
	}
	if _, err := cliProcess(t, "detach", dev); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/loop/backing_file"); err == nil {
		t.Errorf("%s still attached to %s", dev, b)
	}
	d, err := vhd.Open(path, &vhd.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := make([]byte, 26)
	if _, err := d.ReadAt(b, 3<<20); err != nil || string(b) != "written through the device" {
		t.Errorf("disk holds %q, %v", b, err)
	}
}

// TestAttachCommandReadOnly: --read-only gives a device that refuses
// writes; "vhd detach FILE" ends it.
func TestAttachCommandReadOnly(t *testing.T) {
	cliNeedAttach(t)
	path := cliNewVHDX(t)
	dev, err := cliRun(t, newAttachCmd(), "--read-only", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vhd.DetachVhd(path) })
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt(make([]byte, 512), 0)
		f.Close()
	}
	if err == nil {
		t.Error("write to a read-only attach succeeded")
	}
	if _, err := cliRun(t, newDetachCmd(), path); err != nil {
		t.Fatal(err)
	}
	if _, err := cliRun(t, newDetachCmd(), path); err == nil {
		t.Error("detach of a disk not attached succeeded")
	}
}

// TestIDCommand prints a VHDX's identifier and sets a VHD's.
func TestIDCommand(t *testing.T) {
	path := cliNewVHDX(t)
	want, err := vhd.GetVirtualDiskIdentifier(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cliRun(t, newIDCmd(), path)
	if err != nil || out != want.String() {
		t.Errorf("vhd id = %q, %v; want %s", out, err, want)
	}
	if _, err := cliRun(t, newIDCmd(), "--set", "not-a-guid", path); !errors.Is(err, vhd.ErrInvalidArgument) {
		t.Errorf("--set not-a-guid: %v", err)
	}

	vpath := filepath.Join(t.TempDir(), "disk.vhd")
	d, err := vhd.Create(vpath, vhd.FormatVHD, &vhd.CreateOptions{Size: 4 << 20})
	if errors.Is(err, errors.ErrUnsupported) {
		testutil.Missing(t, "root package cannot create VHD yet: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	out, err = cliRun(t, newIDCmd(), "--set", "{AABBCCDD-0011-2233-4455-66778899AABB}", vpath)
	if err != nil || out != "aabbccdd-0011-2233-4455-66778899aabb" {
		t.Errorf("vhd id --set = %q, %v", out, err)
	}
}

func TestParseGUID(t *testing.T) {
	g, _ := guid.FromString("01234567-89ab-cdef-0123-456789abcdef")
	for _, s := range []string{
		"01234567-89ab-cdef-0123-456789abcdef",
		"{01234567-89AB-CDEF-0123-456789ABCDEF}",
		" 01234567-89ab-cdef-0123-456789abcdef\n",
	} {
		if got, err := parseGUID(s); err != nil || got != g {
			t.Errorf("parseGUID(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "{}", "0123", "{01234567-89ab-cdef-0123-456789abcdef"} {
		if _, err := parseGUID(s); !errors.Is(err, vhd.ErrInvalidArgument) {
			t.Errorf("parseGUID(%q) = %v, want ErrInvalidArgument", s, err)
		}
	}
}
