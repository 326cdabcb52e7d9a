package repository

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
)

// DB is what a Source needs of the database: one query at a time.
type DB interface {
	Query(ctx context.Context, query string) (Rows, error)
	Close() error
}

// SQLDB adapts a *sql.DB to DB.
type SQLDB struct{ DB *sql.DB }

// Query runs query.
func (d SQLDB) Query(ctx context.Context, query string) (Rows, error) {
	return d.DB.QueryContext(ctx, query)
}

// Close closes the pool.
func (d SQLDB) Close() error { return d.DB.Close() }

// OpenDB opens the Galaxy Repository database a go-mssqldb connection
// string names ("server=localhost;database=ZB;Integrated Security=true"
// for Windows integrated login, "...;user id=U;password=P" for SQL
// login). It checks the string but connects only when first queried.
func OpenDB(conn string) (DB, error) {
	c, err := mssql.NewConnector(conn)
	if err != nil {
		return nil, fmt.Errorf("repository: connection string: %w", err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return SQLDB{DB: db}, nil
}

// Default timings.
const (
	DefaultReadBudget = 5 * time.Minute  // one whole model read
	probeBudget       = 15 * time.Second // one deploy probe
)

// Options configure a Source.
type Options struct {
	DB    DB
	Store *browse.Store
	// Poll is the deploy probe's period (config galaxy_poll, whose
	// default is upstream's 30 s); it must be > 0.
	Poll time.Duration
	// ReadBudget bounds one model read (every query of it); 0 means
	// DefaultReadBudget.
	ReadBudget time.Duration
	// SnapshotPath is the snapshot file, written after each model read
	// and served (stale) at start while the database is unreachable; ""
	// keeps none.
	SnapshotPath string
	Log          *slog.Logger
}

// Source keeps a browse.Store at the model of a Galaxy Repository
// database: a model read at start, then a deploy probe every Poll that
// reads the model again when time_of_last_deploy changed. While the
// database is unreachable the last model stays in force, marked stale;
// when it is back with the same deploy time that model is live again
// without a new read.
type Source struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex // one refresh at a time; guards what follows
	seq      uint64     // the deploy sequence of the model in force
	deployed time.Time  // its time_of_last_deploy
	have     bool       // a model (read or from the file) is in force

	stop chan struct{}
	wg   sync.WaitGroup
}

// Start begins: it loads the snapshot file (if any, served stale), tries
// one refresh bounded by ctx, and then polls until Close. An unreachable
// database is not an error: the source logs and keeps polling.
func Start(ctx context.Context, opts Options) *Source {
	if opts.Poll <= 0 {
		panic("repository: Options.Poll must be > 0")
	}
	if opts.ReadBudget <= 0 {
		opts.ReadBudget = DefaultReadBudget
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Source{opts: opts, log: opts.Log, stop: make(chan struct{})}
	if opts.SnapshotPath != "" {
		snap, from, err := browse.ReadFile(opts.SnapshotPath, 1)
		switch {
		case err == nil:
			s.seq, s.deployed, s.have = 1, snap.Info().GetLastDeployTime().AsTime(), true
			opts.Store.Set(snap)
			s.log.Info("galaxy repository: serving the snapshot file until the database answers", "file", opts.SnapshotPath,
				"read_from", from.String(), "objects", snap.Info().GetObjectCount(), "deployed", s.deployed)
		case !errors.Is(err, browse.ErrNoSnapshotFile):
			s.log.Warn("galaxy repository: snapshot file not usable", "error", err)
		}
	}
	if err := s.Refresh(ctx); err != nil {
		s.log.Warn("galaxy repository: database not reachable; polling", "error", err, "every", opts.Poll)
	}
	s.wg.Add(1)
	go s.run()
	return s
}

// Close stops polling and closes the database.
func (s *Source) Close() {
	close(s.stop)
	s.wg.Wait()
	_ = s.opts.DB.Close()
}

func (s *Source) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Debug("galaxy repository: refresh failed", "error", err)
		}
	}
}

// Refresh probes the deploy time and, when it changed (or no model was
// read yet), reads the model and puts it in force. On failure the model
// in force is marked stale.
func (s *Source) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.refresh(ctx)
	if err != nil {
		if cur := s.opts.Store.Load(); cur != nil && cur.Info().GetFreshness() == mxgatewayv1.Freshness_FRESHNESS_LIVE {
			s.opts.Store.Set(cur.With(cur.Info().GetSource(), mxgatewayv1.Freshness_FRESHNESS_STALE))
			s.log.Warn("galaxy repository: database unreachable; serving the last model, stale", "error", err)
		}
	}
	return err
}

func (s *Source) refresh(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, probeBudget)
	g, err := query(pctx, s.opts.DB, QueryGalaxy, ScanGalaxy)
	cancel()
	if err != nil {
		return err
	}
	cur := s.opts.Store.Load()
	if s.have && cur != nil && g.Deployed.Equal(s.deployed) {
		if in := cur.Info(); in.GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_LIVE || in.GetSource() != mxgatewayv1.ModelSource_MODEL_SOURCE_REPOSITORY {
			s.opts.Store.Set(cur.With(mxgatewayv1.ModelSource_MODEL_SOURCE_REPOSITORY, mxgatewayv1.Freshness_FRESHNESS_LIVE))
			s.log.Info("galaxy repository: database reachable, model unchanged: live", "deployed", g.Deployed)
		}
		return nil
	}
	began := time.Now()
	rctx, cancel := context.WithTimeout(ctx, s.opts.ReadBudget)
	defer cancel()
	hier, err := query(rctx, s.opts.DB, QueryHierarchy, ScanHierarchy)
	if err != nil {
		return err
	}
	attrs, err := query(rctx, s.opts.DB, QueryAttributes, ScanAttributes)
	if err != nil {
		return err
	}
	builtins, err := query(rctx, s.opts.DB, QueryBuiltins, ScanBuiltins)
	if err != nil {
		return err
	}
	if len(hier) == 0 {
		s.log.Warn("galaxy repository: the hierarchy query returned no object (nothing deployed?)")
	}
	s.seq++
	snap := browse.Build(Assemble(g, hier, attrs, builtins), s.seq, mxgatewayv1.ModelSource_MODEL_SOURCE_REPOSITORY,
		mxgatewayv1.Freshness_FRESHNESS_LIVE)
	s.opts.Store.Set(snap)
	s.deployed, s.have = g.Deployed, true
	s.log.Info("galaxy repository: model read", "sequence", s.seq, "deployed", g.Deployed,
		"objects", snap.Info().GetObjectCount(), "attributes", snap.Info().GetAttributeCount(), "took", time.Since(began))
	if s.opts.SnapshotPath != "" {
		if err := browse.WriteFile(s.opts.SnapshotPath, snap); err != nil {
			s.log.Warn("galaxy repository: snapshot file not written", "error", err)
		}
	}
	return nil
}

// query runs the named query and scans its rows.
func query[T any](ctx context.Context, db DB, name string, scan func(Rows) (T, error)) (T, error) {
	var zero T
	rows, err := db.Query(ctx, Query(name))
	if err != nil {
		return zero, fmt.Errorf("repository: %s: %w", name, err)
	}
	return scan(rows)
}
