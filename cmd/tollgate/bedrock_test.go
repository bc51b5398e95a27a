package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy/simulator"
)

// TestBedrockConfigLoads: configs/bedrock.yaml loads, with its catalogue,
// and names bedrock upstreams with regions.
func TestBedrockConfigLoads(t *testing.T) {
	fc, err := loadConfig("../../configs/bedrock.yaml", false)
	if err != nil {
		t.Fatalf("cannot load configs/bedrock.yaml: %s", err)
	}
	if _, err := loadCatalogue(fc); err != nil {
		t.Fatalf("cannot load its catalogue: %s", err)
	}
	if len(fc.Upstreams) == 0 {
		t.Fatalf("no upstreams in configs/bedrock.yaml")
	}
	for _, u := range fc.Upstreams {
		if u.Kind != "bedrock" || u.Region == "" {
			t.Fatalf("unexpected upstream %+v; want bedrock upstreams with regions", u)
		}
	}
}

// TestConfigUpstreamChecks: bad upstream entries fail with their index.
func TestConfigUpstreamChecks(t *testing.T) {
	f := func(upstream, want string) {
		t.Helper()
		_, err := parseConfig([]byte("listen: a:1\nadmin_listen: b:2\nupstreams:\n  - " + upstream + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("unexpected error for %s: %v; want %q", upstream, err, want)
		}
	}
	f("{name: x, kind: bedrock}", "needs a region")
	f("{name: x, kind: bedrock, region: us-east-1, auth: magic}", "want sigv4 or bearer")
	f("{name: x, kind: openai}", "unknown kind")
	f("{name: x, region: us-east-1}", "for bedrock upstreams")
	f("{name: x, weight: -1}", "negative")
}

// startProcess runs the tollgate binary with args and exactly env, and
// stops it at the end of the test.
func startProcess(t *testing.T, env []string, args ...string) (*exec.Cmd, *lockedBuffer, chan error) {
	t.Helper()
	skipProcessTestIfShort(t)
	cmd := exec.Command(tollgateBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return cmd, &out, exited
}

// awsTestEnv is the environment of a gateway signing with the simulator's
// test credentials, kept away from the machine's own AWS configuration.
func awsTestEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{
		"HOME=" + home,
		"AWS_CONFIG_FILE=" + home + "/config",
		"AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=" + simulator.TestAWSCredentials.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + simulator.TestAWSCredentials.SecretAccessKey,
	}
}

// TestServeBedrock: `tollgate serve --config configs/bedrock.yaml
// --bedrock-endpoint URL` serves streamed calls from `tollgate simulator
// --mode bedrock`, signing with the AWS credentials of the environment.
func TestServeBedrock(t *testing.T) {
	simAddr := freeAddr(t)
	_, simOut, simExited := startProcess(t, nil, "simulator", "--mode", "bedrock", "--listen", simAddr)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", simAddr); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-simExited:
			t.Fatalf("the simulator exited: %v\n%s", err, simOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the simulator did not listen in time:\n%s", simOut.String())
		}
	}

	p := &gatewayProcess{t: t, client: freeAddr(t), admin: freeAddr(t), token: "test-admin-token", dataDir: t.TempDir()}
	env := append(awsTestEnv(t), "TOLLGATE_ADMIN_TOKEN="+p.token)
	var out *lockedBuffer
	p.cmd, out, p.exited = startProcess(t, env, "serve", "--config", "../../configs/bedrock.yaml", "--data-dir", p.dataDir,
		"--listen", p.client, "--admin-listen", p.admin, "--bedrock-endpoint", "http://"+simAddr)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "started:"); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-p.exited:
			t.Fatalf("the gateway exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not start in time:\n%s", out.String())
		}
	}
	if strings.Contains(out.String(), "SIMULATOR") {
		t.Fatalf("a bedrock-only gateway started the anthropic simulator:\n%s", out.String())
	}
	key := p.setupAccount("acme", "10")
	resp := p.stream(key, "Hello from Bedrock [[sim:words=6]]")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("content-type") != "text/event-stream; charset=utf-8" ||
		!strings.Contains(string(body), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
		t.Fatalf("unexpected reply %d %v:\n%s\n%s", resp.StatusCode, resp.Header, body, out.String())
	}
	st, rec := p.adminDo("GET", "/admin/v1/calls?request_id="+resp.Header.Get("request-id"), "")
	data, _ := rec["data"].([]any)
	if st != 200 || len(data) != 1 {
		t.Fatalf("no call record: %d %v", st, rec)
	}
	if r := data[0].(map[string]any); r["upstream"] != "bedrock-us-east-1" || r["outcome"] != "ok" {
		t.Fatalf("unexpected call record %v", r)
	}
}

// TestServeBedrockNoCredentials: without AWS credentials a bedrock
// configuration does not start, and says why.
func TestServeBedrockNoCredentials(t *testing.T) {
	home := t.TempDir()
	cmd := exec.Command(tollgateBin, "serve", "--config", "../../configs/bedrock.yaml", "--data-dir", t.TempDir(),
		"--listen", freeAddr(t), "--admin-listen", freeAddr(t), "--bedrock-endpoint", "http://127.0.0.1:9")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TOLLGATE_ADMIN_TOKEN=t", "HOME=" + home, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + home + "/config", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AWS credentials") {
		t.Fatalf("serve started without AWS credentials: %v\n%s", err, out)
	}
}
