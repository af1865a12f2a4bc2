// aviary-example drives Aviary from Go with the clients generated from the
// same contracts as the TypeScript services (clients/go/gen): two people
// register and verify (codes from the dev code sink), Ben follows Ana, Ana
// posts and Ben reads it in his home feed; then Ben opens his realtime stream,
// Ana posts again, and Ben sees that post live (a FeedUpdated event on the
// stream) and first in his home feed.
//
// Every call is plain gRPC over h2c (connect-go with WithGRPC). Point -edge at
// Envoy to go through the edge, or the per-service flags at the services
// directly. Each step prints one JSON line, so a test (or a person) can follow.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"

	authv1 "aviary.dev/clients/go/gen/aviary/auth/v1"
	"aviary.dev/clients/go/gen/aviary/auth/v1/authv1connect"
	feedv1 "aviary.dev/clients/go/gen/aviary/feed/v1"
	"aviary.dev/clients/go/gen/aviary/feed/v1/feedv1connect"
	postv1 "aviary.dev/clients/go/gen/aviary/post/v1"
	"aviary.dev/clients/go/gen/aviary/post/v1/postv1connect"
	realtimev1 "aviary.dev/clients/go/gen/aviary/realtime/v1"
	"aviary.dev/clients/go/gen/aviary/realtime/v1/realtimev1connect"
	userv1 "aviary.dev/clients/go/gen/aviary/user/v1"
	"aviary.dev/clients/go/gen/aviary/user/v1/userv1connect"
)

type endpoints struct {
	auth, user, post, feed, realtime string
}

func main() {
	edge := flag.String("edge", "", "the edge (Envoy) base URL; sets every service URL not given explicitly")
	var urls endpoints
	flag.StringVar(&urls.auth, "auth", "", "auth service base URL")
	flag.StringVar(&urls.user, "user", "", "user service base URL")
	flag.StringVar(&urls.post, "post", "", "post service base URL")
	flag.StringVar(&urls.feed, "feed", "", "feed service base URL")
	flag.StringVar(&urls.realtime, "realtime", "", "realtime service base URL")
	codes := flag.String("codes", ".dev/codes.jsonl", "the auth service's code sink (AUTH_CODE_SINK) to read verification codes from")
	timeout := flag.Duration("timeout", 60*time.Second, "how long the whole run may take")
	flag.Parse()
	for _, u := range []*string{&urls.auth, &urls.user, &urls.post, &urls.feed, &urls.realtime} {
		if *u == "" {
			*u = *edge
		}
		if *u == "" {
			fail(errors.New("give -edge, or every one of -auth -user -post -feed -realtime"))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, urls, *codes); err != nil {
		fail(err)
	}
}

func fail(err error) {
	step("error", map[string]any{"message": err.Error()})
	os.Exit(1)
}

// step prints one line of the run's log.
func step(name string, fields map[string]any) {
	line := map[string]any{"step": name}
	for k, v := range fields {
		line[k] = v
	}
	out, _ := json.Marshal(line)
	fmt.Println(string(out))
}

// h2c: the services and the edge speak cleartext HTTP/2 (prior knowledge).
func h2cClient() *http.Client {
	transport := &http.Transport{
		DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ForceAttemptHTTP2: true,
	}
	transport.Protocols = new(http.Protocols)
	transport.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: transport}
}

type clients struct {
	auth     authv1connect.AuthServiceClient
	user     userv1connect.UserServiceClient
	post     postv1connect.PostServiceClient
	feed     feedv1connect.FeedServiceClient
	realtime realtimev1connect.RealtimeServiceClient
}

func newClients(urls endpoints) clients {
	http := h2cClient()
	grpc := connect.WithGRPC()
	return clients{
		auth:     authv1connect.NewAuthServiceClient(http, urls.auth, grpc),
		user:     userv1connect.NewUserServiceClient(http, urls.user, grpc),
		post:     postv1connect.NewPostServiceClient(http, urls.post, grpc),
		feed:     feedv1connect.NewFeedServiceClient(http, urls.feed, grpc),
		realtime: realtimev1connect.NewRealtimeServiceClient(http, urls.realtime, grpc),
	}
}

// authorized puts an access token on a request.
func authorized[T any](token string, message *T) *connect.Request[T] {
	request := connect.NewRequest(message)
	request.Header().Set("authorization", "Bearer "+token)
	return request
}

type account struct {
	email, userID, token string
}

const password = "violet-harbour-teapot-42"

func run(ctx context.Context, urls endpoints, codeSink string) error {
	c := newClients(urls)
	suffix := randomHex(6)
	ana, err := signUp(ctx, c, "ana-"+suffix+"@example.org", codeSink)
	if err != nil {
		return fmt.Errorf("ana: %w", err)
	}
	ben, err := signUp(ctx, c, "ben-"+suffix+"@example.org", codeSink)
	if err != nil {
		return fmt.Errorf("ben: %w", err)
	}

	// Ana's profile appears from her UserRegistered event, a moment after she
	// registered: until then she is NOT_FOUND to the user service.
	for {
		_, err := c.user.Follow(ctx, authorized(ben.token, &userv1.FollowRequest{UserId: ana.userID}))
		if err == nil {
			break
		}
		if connect.CodeOf(err) != connect.CodeNotFound || ctx.Err() != nil {
			return fmt.Errorf("follow: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("follow: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	step("followed", map[string]any{"follower": ben.userID, "followee": ana.userID})

	// Ana's first post reaches Ben's home feed once the feed has applied the
	// follow and fanned the post out (both arrive as events): read until it is there.
	first, err := c.post.CreatePost(ctx, authorized(ana.token, &postv1.CreatePostRequest{Text: "first from Go " + suffix}))
	if err != nil {
		return fmt.Errorf("create post: %w", err)
	}
	firstID := first.Msg.GetPost().GetPostId()
	step("posted", map[string]any{"post_id": firstID})
	if err := waitForFeed(ctx, c, ben.token, firstID); err != nil {
		return err
	}

	// Ben's stream is open (Ready received) before Ana posts again, so the hint is live.
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	stream, err := c.realtime.Subscribe(streamCtx, authorized(ben.token, &realtimev1.SubscribeRequest{}))
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer stream.Close()
	if !stream.Receive() {
		return fmt.Errorf("subscribe: the stream ended before Ready: %w", stream.Err())
	}
	ready := stream.Msg().GetReady()
	if ready == nil {
		return errors.New("subscribe: the first frame is not Ready")
	}
	step("stream_ready", map[string]any{"epoch": ready.GetPosition().GetEpoch(), "offset": ready.GetPosition().GetOffset()})

	second, err := c.post.CreatePost(ctx, authorized(ana.token, &postv1.CreatePostRequest{Text: "second from Go " + suffix}))
	if err != nil {
		return fmt.Errorf("create post: %w", err)
	}
	secondID := second.Msg.GetPost().GetPostId()
	step("posted", map[string]any{"post_id": secondID})

	for stream.Receive() {
		if update := stream.Msg().GetEvent().GetFeedUpdated(); update != nil {
			step("live_feed_updated", map[string]any{"newest_post_id": update.GetNewestPostId(), "offset": stream.Msg().GetEvent().GetOffset()})
			if update.GetNewestPostId() == secondID {
				break
			}
		}
	}
	if err := stream.Err(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	stopStream()

	if err := waitForFeed(ctx, c, ben.token, secondID); err != nil {
		return err
	}
	step("done", nil)
	return nil
}

// waitForFeed reads the home feed until `postID` is its newest item.
func waitForFeed(ctx context.Context, c clients, token, postID string) error {
	for {
		feed, err := c.feed.GetHomeFeed(ctx, authorized(token, &feedv1.GetHomeFeedRequest{PageSize: 20}))
		if err != nil {
			return fmt.Errorf("home feed: %w", err)
		}
		ids := make([]string, 0, len(feed.Msg.GetItems()))
		for _, item := range feed.Msg.GetItems() {
			ids = append(ids, item.GetPost().GetPostId())
		}
		if len(ids) > 0 && ids[0] == postID {
			step("home_feed", map[string]any{"post_ids": ids})
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("home feed: %s never came first (last read %v): %w", postID, ids, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func signUp(ctx context.Context, c clients, email, codeSink string) (account, error) {
	registered, err := c.auth.Register(ctx, connect.NewRequest(&authv1.RegisterRequest{
		Identity: &authv1.RegisterRequest_Email{Email: email},
		Password: password,
	}))
	if err != nil {
		return account{}, fmt.Errorf("register: %w", err)
	}
	code, err := waitForCode(ctx, codeSink, email)
	if err != nil {
		return account{}, err
	}
	if _, err := c.auth.VerifyIdentity(ctx, connect.NewRequest(&authv1.VerifyIdentityRequest{
		Identity: &authv1.VerifyIdentityRequest_Email{Email: email},
		Code:     code,
	})); err != nil {
		return account{}, fmt.Errorf("verify: %w", err)
	}
	login, err := c.auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{
		Identity:   &authv1.LoginRequest_Email{Email: email},
		Password:   password,
		DeviceName: "aviary-example (Go)",
	}))
	if err != nil {
		return account{}, fmt.Errorf("login: %w", err)
	}
	step("signed_in", map[string]any{"email": email, "user_id": registered.Msg.GetUserId()})
	return account{email: email, userID: login.Msg.GetUserId(), token: login.Msg.GetTokens().GetAccessToken()}, nil
}

// waitForCode polls the code sink (one JSON object per line) for the newest
// verification code sent to `to`: the code is written by the auth service's
// delivery worker some time after Register returned.
func waitForCode(ctx context.Context, sink, to string) (string, error) {
	for {
		if code, ok := latestCode(sink, to); ok {
			return code, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no verification code for %s in %s: %w", to, sink, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func latestCode(sink, to string) (string, bool) {
	file, err := os.Open(sink)
	if err != nil {
		return "", false
	}
	defer file.Close()
	var code string
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		var line struct{ To, Purpose, Code string }
		if json.Unmarshal([]byte(strings.TrimSpace(scanner.Text())), &line) == nil && line.To == to && line.Purpose == "verify" {
			code = line.Code
		}
	}
	return code, code != ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
