package vhd1

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
)

// qemuVirtualSize returns the virtual size qemu-img 7.2 sees with -f vpc.
func qemuVirtualSize(t *testing.T, path string) int64 {
	t.Helper()
	out := testutil.Run(t, "qemu-img", "info", "-f", "vpc", "--output=json", path)
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return info.VirtualSize
}

var mediaSizeRE = regexp.MustCompile(`Media size\s*:.*\((\d+) bytes\)`)

// vhdiinfoSize returns the media size libvhdi's vhdiinfo reports.
func vhdiinfoSize(t *testing.T, path string) int64 {
	t.Helper()
	out := testutil.Run(t, "vhdiinfo", path)
	m := mediaSizeRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("vhdiinfo: no media size in\n%s", out)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// pyvhdiScript prints the media size and the sha256 of the content that
// libvhdi's Python binding reads, with an optional chain of parents
// (child first), linked with set_parent.
const pyvhdiScript = `
import sys, hashlib, pyvhdi
files = []
for p in sys.argv[1:]:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
for i in range(len(files) - 2, -1, -1):
    files[i].set_parent(files[i + 1])
f = files[0]
size = f.get_media_size()
h = hashlib.sha256()
off = 0
while off < size:
    b = f.read_buffer_at_offset(min(1 << 20, size - off), off)
    if not b:
        break
    h.update(b)
    off += len(b)
print(size, off, h.hexdigest())
`

// pyvhdi runs pyvhdiScript on paths (child first) and returns the media
// size, the bytes read and the content sha256.
func pyvhdi(t *testing.T, paths ...string) (size, read int64, sha string) {
	t.Helper()
	py := ""
	for _, c := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(c, "-c", "import pyvhdi").Run() == nil {
			py = c
			break
		}
	}
	if py == "" {
		testutil.Missing(t, "python3 with pyvhdi (python3-libvhdi) not installed")
	}
	out := testutil.Run(t, py, append([]string{"-c", pyvhdiScript}, paths...)...)
	f := strings.Fields(string(out))
	if len(f) != 3 {
		t.Fatalf("pyvhdi output %q", out)
	}
	size, _ = strconv.ParseInt(f[0], 10, 64)
	read, _ = strconv.ParseInt(f[1], 10, 64)
	return size, read, f[2]
}
