package vhdx

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// This file resolves the parent of a differencing disk through its
// parent locator ([MS-VHDX] 2.6.2.6; FORMATS.md 3.9).

// parentCandidates lists the paths to try, in order: the policy's Path
// alone when set; otherwise relative_path against the child's directory,
// the stored file name in the child's directory, then volume_path and
// absolute_win32_path when absolute paths are allowed.
func parentCandidates(pl *ParentLocator, childPath string, pol vdisk.ParentPolicy) []string {
	if pol.Path != "" {
		return []string{pol.Path}
	}
	dir := filepath.Dir(childPath)
	var out []string
	add := func(p string) {
		for _, q := range out {
			if q == p {
				return
			}
		}
		out = append(out, p)
	}
	rel, hasRel := pl.Get("relative_path")
	if hasRel {
		add(filepath.Join(dir, hostPath(rel)))
	}
	var abs []string
	for _, key := range []string{"volume_path", "absolute_win32_path"} {
		if v, ok := pl.Get(key); ok {
			abs = append(abs, hostAbsPath(v))
		}
	}
	for _, p := range append([]string{hostPath(rel)}, abs...) {
		if base := filepath.Base(p); p != "" && base != "." && base != string(filepath.Separator) {
			add(filepath.Join(dir, base))
		}
	}
	if pol.AllowAbsolute {
		for _, p := range abs {
			add(p)
		}
	}
	return out
}

// hostPath converts a stored relative path to the host's separators.
func hostPath(p string) string {
	return filepath.FromSlash(strings.ReplaceAll(p, `\`, "/"))
}

// hostAbsPath converts an extended-length Windows path (\\?\C:\x,
// \\?\UNC\srv\share\x, \\?\Volume{...}\x) to a host path. On other
// systems a path written by this package from a host path (\\?\ + the
// path with \ separators) becomes that host path again.
func hostAbsPath(p string) string {
	p = strings.TrimPrefix(p, `\\?\`)
	if rest, ok := strings.CutPrefix(p, `UNC\`); ok {
		p = `\\` + rest
	}
	return hostPath(p)
}

// openParent finds, opens (read-only) and checks the parent.
// The candidate's identity is checked before its own parents are opened,
// so that decoys at every level of a chain do not each open a whole
// chain.
func (d *Disk) openParent(opts *vdisk.OpenOptions, depth int) error {
	pl := d.meta.ParentLocator
	var links []GUID
	for _, key := range []string{"parent_linkage", "parent_linkage2"} {
		if v, ok := pl.Get(key); ok {
			g, err := parseLinkage(v)
			if err != nil {
				return corrupt("parent locator", key, int64(d.metaRegion.FileOffset), "%v", err)
			}
			links = append(links, g)
		}
	}
	popts := &vdisk.OpenOptions{ReadOnly: true, OpenFile: opts.OpenFile,
		Parent: vdisk.ParentPolicy{AllowAbsolute: opts.Parent.AllowAbsolute}}
	var tried []string
	var mismatch error
	for _, cand := range parentCandidates(pl, d.path, opts.Parent) {
		f, err := opts.Open(cand, true)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", cand, err))
			continue
		}
		p, err := loadFile(f, cand, popts)
		if err != nil {
			f.Close()
			mismatch = fmt.Errorf("%w: %s is not a usable VHDX parent: %w", vdisk.ErrParentMismatch, cand, err)
			continue
		}
		if err := d.checkParent(p, links); err != nil {
			f.Close()
			mismatch = fmt.Errorf("%s: %w", cand, err)
			continue
		}
		if err := p.openParents(popts, depth+1); err != nil {
			f.Close()
			if errors.Is(err, errTooDeep) {
				return err
			}
			return fmt.Errorf("parent %s: %w", cand, err)
		}
		d.parent = p
		return nil
	}
	if mismatch != nil {
		return mismatch
	}
	if len(tried) == 0 {
		return fmt.Errorf("%w: the parent locator has no relative path and absolute paths are not allowed", vdisk.ErrParentNotFound)
	}
	return fmt.Errorf("%w: tried %s", vdisk.ErrParentNotFound, strings.Join(tried, ", "))
}

// checkParent checks the parent's DataWriteGuid against the linkage
// values and its logical sector size against the child's.
func (d *Disk) checkParent(p *Disk, links []GUID) error {
	ok := false
	for _, g := range links {
		ok = ok || g == p.hdr.DataWriteGUID
	}
	if !ok {
		return fmt.Errorf("%w: the parent's DataWriteGuid is %s but the "+
			"child was made from %s: the parent was written to or replaced "+
			"after the child was created",
			vdisk.ErrParentMismatch, p.hdr.DataWriteGUID, links[0])
	}
	if p.geo.sectorSize != d.geo.sectorSize {
		return fmt.Errorf("%w: parent logical sector size %d, child %d",
			vdisk.ErrParentMismatch, p.geo.sectorSize, d.geo.sectorSize)
	}
	return nil
}
