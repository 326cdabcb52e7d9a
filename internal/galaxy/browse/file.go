package browse

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// SnapshotFileName is the snapshot file's name in the data directory.
const SnapshotFileName = "galaxy-snapshot.json"

// MaxSnapshotFileBytes bounds the snapshot file ReadFile accepts.
const MaxSnapshotFileBytes = 1 << 30

// snapshotFileVersion is the format of the file; another is refused.
const snapshotFileVersion = 1

// snapshotFile is the file's content: the model and where it came from.
type snapshotFile struct {
	Version int                     `json:"version"`
	Source  mxgatewayv1.ModelSource `json:"source"`
	Model   *Model                  `json:"model"`
}

// WriteFile writes the model of s to path atomically: a temporary file
// in the same directory, synced, then renamed over path, so a reader (or
// a crash) sees the old file or the new one, never part of one.
func WriteFile(path string, s *Snapshot) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("browse: snapshot file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing to remove
	enc := json.NewEncoder(tmp)
	err = enc.Encode(snapshotFile{Version: snapshotFileVersion, Source: s.info.GetSource(), Model: s.Model()})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("browse: snapshot file: %w", err)
	}
	return nil
}

// ErrNoSnapshotFile: there is no snapshot file yet.
var ErrNoSnapshotFile = errors.New("browse: no snapshot file")

// ReadFile reads the snapshot file at path as deploy sequence seq: the
// model it holds, with source SNAPSHOT and freshness STALE. The source
// it was read from is returned too. ErrNoSnapshotFile when there is
// none.
func ReadFile(path string, seq uint64) (*Snapshot, mxgatewayv1.ModelSource, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, ErrNoSnapshotFile
	}
	if err != nil {
		return nil, 0, fmt.Errorf("browse: snapshot file: %w", err)
	}
	defer f.Close()
	var sf snapshotFile
	dec := json.NewDecoder(io.LimitReader(f, MaxSnapshotFileBytes+1))
	if err := dec.Decode(&sf); err != nil {
		return nil, 0, fmt.Errorf("browse: snapshot file %s: %w", path, err)
	}
	if sf.Version != snapshotFileVersion || sf.Model == nil {
		return nil, 0, fmt.Errorf("browse: snapshot file %s: format version %d, want %d", path, sf.Version, snapshotFileVersion)
	}
	return Build(sf.Model, seq, mxgatewayv1.ModelSource_MODEL_SOURCE_SNAPSHOT, mxgatewayv1.Freshness_FRESHNESS_STALE), sf.Source, nil
}

// With returns a copy of s (sharing its tree) with source src and
// freshness f: a model confirmed current again without being read again.
func (s *Snapshot) With(src mxgatewayv1.ModelSource, f mxgatewayv1.Freshness) *Snapshot {
	c := s.withFreshness(f)
	c.info.Source = src
	return c
}
