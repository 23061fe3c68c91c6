package vhd1

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// candidate is a path where a parent may be, and what named it.
type candidate struct {
	path   string
	source string // "W2ru", "W2ku", "MacX", "Parent Unicode Name", "policy"
}

// parentCandidates lists where the parent may be, in the order of
// FORMATS.md 2.10: W2ru relative to the child's directory, W2ku
// absolute (only when allowed), MacX, then the parent name in the
// child's directory. policy.Path replaces them all.
func parentCandidates(r readerAtLayout, childPath string, policy vdisk.ParentPolicy) ([]candidate, []string) {
	if policy.Path != "" {
		return []candidate{{policy.Path, "policy"}}, nil
	}
	dir := filepath.Dir(childPath)
	var cands []candidate
	var notes []string
	seen := map[string]bool{}
	addPath := func(p, src string) {
		if p != "" && !seen[p] {
			seen[p] = true
			cands = append(cands, candidate{p, src})
		}
	}
	order := []PlatformCode{PlatformW2ru, PlatformW2ku, PlatformMacX}
	for _, code := range order {
		for i, loc := range r.l.header.ParentLocators {
			if loc.PlatformCode != code {
				continue
			}
			s, err := readLocator(r, i)
			if err != nil {
				notes = append(notes, fmt.Sprintf("locator %d (%v): %v",
					i, code, err))
				continue
			}
			p, abs := hostPath(s, code, dir)
			if abs && !policy.AllowAbsolute {
				notes = append(notes, fmt.Sprintf("%v %q skipped: "+
					"absolute paths not allowed", code, s))
				continue
			}
			addPath(p, code.String())
		}
	}
	if name := r.l.header.ParentName(); name != "" {
		base := name[strings.LastIndexAny(name, `\/:`)+1:]
		if base != "" && base != "." && base != ".." {
			addPath(filepath.Join(dir, base), "Parent Unicode Name")
		}
	}
	return cands, notes
}

// readerAtLayout is a file with its validated layout.
type readerAtLayout struct {
	f vdisk.File
	l *layout
}

// readLocator reads and decodes the path of locator i.
func readLocator(r readerAtLayout, i int) (string, error) {
	if err := firstError(locatorEntryIssues(r.l, i)); err != nil {
		return "", err
	}
	loc := r.l.header.ParentLocators[i]
	if loc.PlatformDataLength > maxLocatorData {
		return "", fmt.Errorf("%w: %d bytes of locator data",
			errLocator, loc.PlatformDataLength)
	}
	b := make([]byte, loc.PlatformDataLength)
	if err := readFull(r.f, b, int64(loc.PlatformDataOffset)); err != nil {
		return "", err
	}
	return LocatorPath(loc.PlatformCode, b)
}

// hostPath converts a stored locator path to a host path: backslashes
// become the host separator, a leading ".\" goes, and a relative path is
// taken relative to dir. abs reports a path that was absolute as stored.
func hostPath(s string, code PlatformCode, dir string) (p string, abs bool) {
	if code != PlatformMacX {
		s = strings.ReplaceAll(s, `\`, "/")
	}
	if len(s) >= 2 && s[1] == ':' || strings.HasPrefix(s, "/") {
		return filepath.FromSlash(s), true
	}
	s = strings.TrimPrefix(s, "./")
	return filepath.Join(dir, filepath.FromSlash(s)), false
}

// openParent finds, opens and checks the parent of a differencing disk.
func (d *Disk) openParent(opts *vdisk.OpenOptions, depth int) error {
	l := &layout{end: d.dataEnd(), footer: &d.footer, header: d.header}
	cands, tried := parentCandidates(readerAtLayout{d.f, l}, d.path, opts.Parent)
	popts := &vdisk.OpenOptions{ReadOnly: true, OpenFile: opts.OpenFile,
		Parent: vdisk.ParentPolicy{AllowAbsolute: opts.Parent.AllowAbsolute}}
	var mismatch error
	for _, c := range cands {
		pf, err := opts.Open(c.path, true)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%s): %v", c.path, c.source,
				shortErr(err)))
			continue
		}
		// The candidate's identity is checked before its own parents
		// are opened: otherwise decoys at every level of a chain would
		// each open a whole chain, 2^depth opens.
		p, err := loadFile(pf, c.path, popts)
		if err != nil {
			pf.Close()
			tried = append(tried, fmt.Sprintf("%s (%s): %v", c.path, c.source, err))
			continue
		}
		if p.footer.UniqueID != d.header.ParentUniqueID {
			mismatch = fmt.Errorf("%s (%s) has Unique Id %s, child wants %s",
				c.path, c.source, uuid.UUID(p.footer.UniqueID),
				uuid.UUID(d.header.ParentUniqueID))
			tried = append(tried, mismatch.Error())
			pf.Close()
			continue
		}
		if err := p.openParents(popts, depth+1); err != nil {
			pf.Close()
			if err == errTooDeep {
				return err
			}
			return fmt.Errorf("open %s: parent %s: %w", d.path, c.path, err)
		}
		d.parent, d.parentPath = p, c.path
		d.checkParentTime(pf)
		return nil
	}
	if mismatch != nil {
		return fmt.Errorf("open %s: %w: %s", d.path, vdisk.ErrParentMismatch,
			strings.Join(tried, "; "))
	}
	if len(tried) == 0 {
		tried = []string{"no locator or parent name gives a path"}
	}
	return fmt.Errorf("open %s: %w; tried: %s", d.path,
		vdisk.ErrParentNotFound, strings.Join(tried, "; "))
}

func shortErr(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "does not exist"
	}
	return err.Error()
}

// statFile is a file that can report its modification time, as
// vdisk.OSFile can.
type statFile interface {
	Stat() (fs.FileInfo, error)
}

// checkParentTime compares Parent Time Stamp with the parent file's
// modification time when the file can tell it. A mismatch is only a
// warning: producers fill the field differently (FORMATS.md 2.10).
func (d *Disk) checkParentTime(pf vdisk.File) {
	sf, ok := pf.(statFile)
	if !ok {
		return
	}
	fi, err := sf.Stat()
	if err != nil {
		return
	}
	if got := TimeStamp(fi.ModTime()); got != d.header.ParentTimeStamp {
		d.warnings = append(d.warnings, fmt.Sprintf("parent time stamp %s "+
			"differs from the parent file's modification time %s: the "+
			"parent may have changed since this child was made",
			Time(d.header.ParentTimeStamp).Format(time.RFC3339),
			Time(got).Format(time.RFC3339)))
	}
}
