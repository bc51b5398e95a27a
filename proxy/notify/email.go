package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	texttemplate "text/template"
	"time"

	mail "github.com/wneessen/go-mail"
)

// SMTP is how email leaves: an SMTP submission server.
type SMTP struct {
	Host string
	Port int
	// TLS is "starttls" (required), "implicit" (TLS from the first byte)
	// or "none" (tests and local relays only).
	TLS                string
	Username, Password string
	// From is the sender, such as "Billing <billing@example.com>".
	From string
	// TLSConfig, when set, replaces the default TLS settings (tests trust
	// their own certificate with it).
	TLSConfig *tls.Config
}

//go:embed templates
var builtinTemplates embed.FS

var languageCode = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$`)

// mailer renders and sends the email of events: per event type a text
// template (its first line "Subject: ...") and an HTML one, looked for in
// the data directory's overrides (dir/<language>/<type>.txt and .html),
// then in the embedded ones, in the account's language, then English.
type mailer struct {
	cfg SMTP
	dir string // overrides ("" for none)
}

// emailOf renders event e for language.
func (m *mailer) emailOf(e *Event, language string) (subject, text, html string, err error) {
	data := struct {
		*Event
		Date string
	}{e, e.Time.Format("2 January 2006 15:04 UTC")}
	t, err := m.template(language, e.Type+".txt")
	if err != nil {
		return "", "", "", err
	}
	tt, err := texttemplate.New(e.Type).Parse(t)
	if err != nil {
		return "", "", "", err
	}
	var tb bytes.Buffer
	if err := tt.Execute(&tb, data); err != nil {
		return "", "", "", err
	}
	first, rest, _ := strings.Cut(tb.String(), "\n")
	subject, text = strings.TrimSpace(strings.TrimPrefix(first, "Subject:")), strings.TrimLeft(rest, "\n")
	h, err := m.template(language, e.Type+".html")
	if err != nil {
		return "", "", "", err
	}
	ht, err := htmltemplate.New(e.Type).Parse(h)
	if err != nil {
		return "", "", "", err
	}
	var hb bytes.Buffer
	if err := ht.Execute(&hb, data); err != nil {
		return "", "", "", err
	}
	return subject, text, hb.String(), nil
}

// template finds a template by name: an override in the language, the
// embedded one in the language, then the same in English.
func (m *mailer) template(language, name string) (string, error) {
	for _, lang := range []string{language, "en"} {
		if !languageCode.MatchString(lang) {
			continue
		}
		if m.dir != "" {
			if b, err := os.ReadFile(filepath.Join(m.dir, lang, name)); err == nil {
				return string(b), nil
			}
		}
		if b, err := builtinTemplates.ReadFile("templates/" + lang + "/" + name); err == nil {
			return string(b), nil
		}
	}
	return "", fmt.Errorf("no email template %s", name)
}

// checkOverrides parses every override template, so a broken one stops
// the start with its name rather than failing each email of its type.
func (m *mailer) checkOverrides() error {
	if m.dir == "" {
		return nil
	}
	return filepath.WalkDir(m.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == m.dir {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".txt":
			_, err = texttemplate.New(path).Parse(string(b))
		case ".html":
			_, err = htmltemplate.New(path).Parse(string(b))
		}
		if err != nil {
			return fmt.Errorf("notify: email template %s: %w", path, err)
		}
		return nil
	})
}

// send mails e to the addresses.
func (m *mailer) send(ctx context.Context, e *Event, language string, to []string) error {
	subject, text, html, err := m.emailOf(e, language)
	if err != nil {
		return err
	}
	msg := mail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := msg.To(to...); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	msg.Subject(subject)
	msg.SetMessageIDWithValue(e.ID + "." + strings.Join(to, ",") + "@tollgate")
	msg.SetDateWithValue(time.Now())
	msg.SetGenHeader("X-Tollgate-Event", e.ID)
	msg.SetBodyString(mail.TypeTextPlain, text)
	msg.AddAlternativeString(mail.TypeTextHTML, html)
	c, err := m.client()
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, msg)
}

func (m *mailer) client() (*mail.Client, error) {
	opts := []mail.Option{mail.WithPort(m.cfg.Port), mail.WithTimeout(30 * time.Second)}
	switch m.cfg.TLS {
	case "implicit":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if m.cfg.TLSConfig != nil {
		opts = append(opts, mail.WithTLSConfig(m.cfg.TLSConfig))
	}
	if m.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(m.cfg.Username), mail.WithPassword(m.cfg.Password))
	}
	return mail.NewClient(m.cfg.Host, opts...)
}

// ErrNoEmail: the notifier has no SMTP server to send with.
var ErrNoEmail = errors.New("notify: email is not configured")

// MailInvitation mails a console invitation to its invitee at once (its
// link is a secret: it is never kept in the outbox). data holds console
// ("customers'" or "operators'"), account, link and expires_at.
func (n *Notifier) MailInvitation(ctx context.Context, to string, data map[string]string) error {
	if n == nil || n.mailer == nil {
		return ErrNoEmail
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	e := &Event{ID: "invitation", Type: "invitation", Time: n.cfg.Now().UTC(), Data: data}
	return n.mailer.send(ctx, e, "", []string{to})
}
