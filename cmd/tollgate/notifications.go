package main

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/internal/testclock"
	"github.com/tollgate/tollgate/ledger/cluster"
	"github.com/tollgate/tollgate/proxy/notify"
	"github.com/tollgate/tollgate/wal"
)

// openNotifier builds the notifier from notifications (when enabled).
func (p *process) openNotifier() error {
	nc := p.fc.Notifications
	if !nc.Enabled {
		return nil
	}
	cfg := notify.Config{Ledger: p.ledger, Log: p.wlog, Now: testclock.Now, Timeout: time.Duration(nc.Webhooks.Timeout),
		DisableAfter: time.Duration(nc.Webhooks.DisableAfter), Logger: p.logger,
		TemplatesDir: cmp.Or(nc.TemplatesDir, filepath.Join(p.fc.DataDir, "notifications", "templates"))}
	cfg.AllowNetworks, cfg.PlatformAllowNetworks = mustPrefixes(nc.Webhooks.AllowNetworks), mustPrefixes(nc.Webhooks.PlatformAllowNetworks)
	if nc.SMTP.Host != "" {
		cfg.SMTP = &notify.SMTP{Host: nc.SMTP.Host, Port: nc.SMTP.Port, TLS: nc.SMTP.TLS, Username: nc.SMTP.Username,
			Password: os.Getenv("TOLLGATE_SMTP_PASSWORD"), From: nc.SMTP.From}
	}
	if p.cluster != nil {
		lock := cluster.NewNotifyLock(p.cluster.pool)
		cfg.Source, cfg.Store, cfg.Lock = cluster.NewOutbox(p.cluster.pool, p.cluster.auth), clusterStates{cluster.NewStates(p.cluster.pool), lock}, lock
		cfg.RemindEvery = time.Minute // a scan of every account in PostgreSQL
	}
	var err error
	p.notifier, err = notify.New(cfg)
	return err
}

// runNotifier delivers: on every node in single-node mode; in cluster mode
// on the one node that holds the notifier's role (the others serve the
// admin routes, under the same lock), passing to another within seconds
// when that node goes away.
func (p *process) runNotifier(ctx context.Context) {
	if p.cluster == nil {
		p.notifier.Run(ctx)
		return
	}
	cluster.Lead(ctx, p.cluster.pool, "notifier", func(ctx context.Context) {
		p.logger.Printf("cluster: this node delivers the notifications")
		p.notifier.Run(ctx)
	})
}

// clusterStates is PostgreSQL's shared states as the notifier's store,
// written through the notifier's lock (which versions each write).
type clusterStates struct {
	shared *cluster.States
	lock   *cluster.NotifyLock
}

func (s clusterStates) States(prefix string, fn func(name string, value []byte) error) error {
	return s.shared.Load(prefix, fn)
}

func (s clusterStates) SetStates(states ...wal.State) error {
	names, values := make([]string, len(states)), make([][]byte, len(states))
	for i, st := range states {
		names[i], values[i] = st.Name, st.Value
	}
	return s.lock.Write(names, values)
}
