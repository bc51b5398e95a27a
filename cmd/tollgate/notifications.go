package main

import (
	"cmp"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/internal/testclock"
	"github.com/tollgate/tollgate/proxy/notify"
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
	var err error
	p.notifier, err = notify.New(cfg)
	return err
}
