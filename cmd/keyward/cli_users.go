package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	kwclient "github.com/keyward/keyward/client"
)

var usersSubcommands = []string{"list", "get", "create", "update", "delete"}

// runUsers is `keyward users …`.
func runUsers(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	sub, args, err := pickSub("users", args, usersSubcommands, stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return usersList(ctx, args, stdin, stdout, stderr)
	case "get":
		return usersGet(ctx, args, stdin, stdout, stderr)
	case "create":
		return usersCreate(ctx, args, stdin, stdout, stderr)
	case "update":
		return usersUpdate(ctx, args, stdin, stdout, stderr)
	case "delete":
		return usersDelete(ctx, args, stdin, stdout, stderr)
	}
	return errUsage
}

func usersList(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("users list", "[--q TEXT] [--kind user|system] [--page-size N] [--page-token T | --all] [--json]", stdin, stdout, stderr)
	var p kwclient.ListUsersParams
	c.fs.StringVar(&p.Q, "q", "", "search name and email")
	c.fs.StringVar(&p.Kind, "kind", "", "user or system")
	c.fs.IntVar(&p.PageSize, "page-size", 0, "users per page, 1..200 (default 50)")
	c.fs.StringVar(&p.PageToken, "page-token", "", "the page to show, from the previous page")
	all := c.fs.Bool("all", false, "every page")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	var l *kwclient.UserList
	if *all {
		l = &kwclient.UserList{Users: []kwclient.User{}}
		for u, err := range api.AllUsers(ctx, p) {
			if err != nil {
				return apiError(err)
			}
			l.Users = append(l.Users, *u)
		}
		l.Total = len(l.Users)
	} else if l, err = api.ListUsers(ctx, p); err != nil {
		return apiError(err)
	}
	if c.json {
		return c.printJSON(struct {
			Users         []kwclient.User `json:"users"`
			NextPageToken *string         `json:"next_page_token"`
			Total         int             `json:"total"`
		}{l.Users, tokenOrNull(l.NextPageToken), l.Total})
	}
	if len(l.Users) == 0 {
		fmt.Fprintln(c.stdout, "No users.")
		return nil
	}
	tw := c.table()
	fmt.Fprintln(tw, "NAME\tID\tEMAIL\tKIND\tROLES\tLICENSED\tCREATED")
	for _, u := range l.Users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(u.Name), cell(u.ID), cell(u.Email), cell(u.Kind),
			cell(strings.Join(u.Roles, ",")), yesNo(u.Licensed), fmtTime(u.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.NextPageToken != "" {
		fmt.Fprintf(c.stdout, "\n%d of %d users. Next page: --page-token %s (or --all)\n", len(l.Users), l.Total, l.NextPageToken)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printUser(w io.Writer, u *kwclient.User) error {
	tw := tabwriterFor(w)
	row := func(name, value string) { fmt.Fprintf(tw, "%s\t%s\n", name, value) }
	row("ID", cell(u.ID))
	row("Name", cell(u.Name))
	row("Email", cell(u.Email))
	row("Kind", cell(u.Kind))
	row("Roles", cell(strings.Join(u.Roles, ", ")))
	row("Licensed", yesNo(u.Licensed))
	row("Created", fmtTime(u.CreatedAt))
	row("Updated", fmtTime(u.UpdatedAt))
	return tw.Flush()
}

func (c *cliCmd) printUser(u *kwclient.User) error {
	if c.json {
		return c.printJSON(u)
	}
	return printUser(c.stdout, u)
}

func usersGet(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("users get", "USER_ID [--json]", stdin, stdout, stderr)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	u, err := api.GetUser(ctx, pos[0])
	if err != nil {
		return apiError(err)
	}
	return c.printUser(u)
}

func usersCreate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("users create", "--email EMAIL --name NAME [--kind user|system] [--roles tenant_admin,developer] [--licensed=false] [--password-stdin] [--json]",
		stdin, stdout, stderr)
	var in kwclient.CreateUserRequest
	c.fs.StringVar(&in.Email, "email", "", "the user's email (required)")
	c.fs.StringVar(&in.Name, "name", "", "the user's name (required)")
	c.fs.StringVar(&in.Kind, "kind", kwclient.KindUser, "user (a person) or system (a service user)")
	roles := c.fs.String("roles", "", "comma-separated roles: tenant_admin, developer")
	licensed := c.fs.Bool("licensed", true, "whether the user holds a license")
	pwStdin := c.fs.Bool("password-stdin", false, "read the person's password from standard input (one line)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if in.Email == "" || in.Name == "" {
		return c.usageError("--email and --name are required")
	}
	in.Roles = splitList(*roles)
	if c.given("licensed") {
		in.Licensed = licensed
	}
	if *pwStdin {
		pw, err := readLine(c.stdin, "password")
		if err != nil {
			return c.usageError("--password-stdin: " + err.Error())
		}
		in.Password = pw
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	u, err := api.CreateUser(ctx, in)
	if err != nil {
		return apiError(err)
	}
	return c.printUser(u)
}

func usersUpdate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("users update", "USER_ID [--name NAME] [--roles a,b] [--licensed=true|false] [--password-stdin] [--json]", stdin, stdout, stderr)
	name := c.fs.String("name", "", "the new name")
	roles := c.fs.String("roles", "", `the new roles, comma-separated; "" removes them all`)
	licensed := c.fs.Bool("licensed", false, "whether the user holds a license")
	pwStdin := c.fs.Bool("password-stdin", false, "read a new password from standard input (one line)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	var in kwclient.UpdateUserRequest
	if c.given("name") {
		in.Name = name
	}
	if c.given("roles") {
		in.Roles = splitList(*roles)
	}
	if c.given("licensed") {
		in.Licensed = licensed
	}
	if *pwStdin {
		pw, err := readLine(c.stdin, "password")
		if err != nil {
			return c.usageError("--password-stdin: " + err.Error())
		}
		in.Password = &pw
	}
	if in.Name == nil && in.Roles == nil && in.Licensed == nil && in.Password == nil {
		return c.usageError("nothing to change: give --name, --roles, --licensed or --password-stdin")
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	u, err := api.UpdateUser(ctx, pos[0], in)
	if err != nil {
		return apiError(err)
	}
	return c.printUser(u)
}

func usersDelete(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("users delete", "USER_ID [--json]", stdin, stdout, stderr)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	if err := api.DeleteUser(ctx, pos[0]); err != nil {
		return apiError(err)
	}
	if c.json {
		return c.printJSON(map[string]any{"id": pos[0], "deleted": true})
	}
	fmt.Fprintf(c.stdout, "Deleted user %s and every key of that user.\n", clean(pos[0]))
	return nil
}
