package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mxgateway/mxgateway/internal/logging"
)

// Files in a run directory. A run directory gw-<pid> belongs to one gateway
// process; gateway.id records that process and worker-<pid>.id each worker
// it started. A record holds the pid, the process identity (its start time,
// so that a reused pid is never mistaken for ours) and the session id.
const (
	runDirPrefix  = "gw-"
	gatewayRecord = "gateway.id"
	workerPrefix  = "worker-"
	recordSuffix  = ".id"
)

func runDirName(pid int) string { return runDirPrefix + strconv.Itoa(pid) }

func workerRecordName(pid int) string { return workerPrefix + strconv.Itoa(pid) + recordSuffix }

type record struct {
	pid      int
	identity string
	session  string
}

func writeRecord(path string, pid int, session string) error {
	id, err := processIdentity(pid)
	if err != nil {
		return fmt.Errorf("supervisor: identify pid %d: %w", pid, err)
	}
	data := fmt.Sprintf("%d\n%s\n%s\n", pid, id, session)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return fmt.Errorf("supervisor: write record: %w", err)
	}
	return nil
}

func readRecord(path string) (record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return record{}, err
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 3 {
		return record{}, fmt.Errorf("supervisor: malformed record %s", path)
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil || pid <= 0 {
		return record{}, fmt.Errorf("supervisor: malformed record %s", path)
	}
	return record{pid: pid, identity: lines[1], session: lines[2]}, nil
}

// alive reports whether the recorded process still runs. With no identity
// on either side (a platform without one) a live pid counts as alive.
func (r record) alive() bool {
	id, err := processIdentity(r.pid)
	if err != nil {
		return false
	}
	return id == r.identity
}

// CleanupLeftovers removes what earlier runs of a gateway left in
// RuntimeDir: for every run directory whose gateway no longer runs, it kills
// the recorded workers that still run (checked by pid and start time) and
// removes the directory with its stale endpoints. Run directories of live
// gateways (another instance sharing RuntimeDir) are left alone. It returns
// every problem it met, joined.
func (s *Supervisor) CleanupLeftovers() error {
	entries, err := os.ReadDir(s.opts.RuntimeDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("supervisor: read runtime dir: %w", err)
	}
	s.mu.Lock()
	ours := s.initDone
	s.mu.Unlock()
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), runDirPrefix) {
			continue
		}
		dir := filepath.Join(s.opts.RuntimeDir, e.Name())
		if dir == s.runDir && ours {
			continue
		}
		if rec, err := readRecord(filepath.Join(dir, gatewayRecord)); err == nil && rec.alive() {
			s.log.Debug("supervisor: run dir of a live gateway kept", "dir", dir, "gateway_pid", rec.pid)
			continue
		}
		if err := s.cleanRunDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanRunDir kills the live workers recorded in a stale run directory and
// removes it.
func (s *Supervisor) cleanRunDir(dir string) error {
	var errs []error
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("supervisor: read %s: %w", dir, err))
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, workerPrefix) || !strings.HasSuffix(name, recordSuffix) {
			continue
		}
		rec, err := readRecord(filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rec.identity == "" || !rec.alive() {
			continue
		}
		if err := killOrphan(rec.pid); err != nil {
			errs = append(errs, fmt.Errorf("supervisor: kill orphan worker %d: %w", rec.pid, err))
			continue
		}
		s.log.Warn("supervisor: killed orphan worker of an earlier run", logging.KeyWorkerPID, rec.pid, logging.KeySession, rec.session)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("supervisor: remove %s: %w", dir, err))
	} else {
		s.log.Info("supervisor: removed leftovers of an earlier run", "dir", dir)
	}
	return errors.Join(errs...)
}
