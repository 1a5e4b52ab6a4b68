-- regflow schema version 1 (commit c564750, no schema_version stamp) on PostgreSQL: made by
-- tests/data/schema/make_v1.py with that commit's code in the schema regflow_v1, then
-- pg_dump -n regflow_v1 --no-owner --no-privileges --inserts (its \restrict lines removed).
-- Tests load it with regflow_v1 replaced by a fresh schema's name.
-- session of alice@example.jp: fTzvdUzV9egqQx39rbjAjw.Cy9g7Nii2jfzQ0VPS9UTpA
-- bob's registration, at enter_code: flow O6VPGW4vgHgtwKOcm3RC3A token gxjvHP2eRbHDqyfCUAY1BvUvcanyS79Cvwgg0nEtvdE code 75488712
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: regflow_v1; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA regflow_v1;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: accounts; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.accounts (
    account text NOT NULL,
    customer_id text NOT NULL,
    "position" integer NOT NULL
);


--
-- Name: codes; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.codes (
    id text NOT NULL,
    flow_id text NOT NULL,
    purpose text NOT NULL,
    email_key text NOT NULL,
    digest text NOT NULL,
    expires_at bigint NOT NULL,
    created_at bigint NOT NULL,
    wrong_tries integer NOT NULL,
    used_at bigint,
    void boolean NOT NULL,
    seq integer NOT NULL
);


--
-- Name: customers; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.customers (
    customer_id text NOT NULL,
    phone text NOT NULL,
    licenses integer NOT NULL,
    require_two_factor boolean NOT NULL
);


--
-- Name: flows; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.flows (
    id text NOT NULL,
    flow text NOT NULL,
    version integer NOT NULL,
    state text NOT NULL,
    status text NOT NULL,
    data text NOT NULL,
    timers text NOT NULL,
    expires_at bigint,
    next_due_at bigint,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    token_digest text NOT NULL,
    rev integer NOT NULL
);


--
-- Name: idempotency_keys; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.idempotency_keys (
    flow_id text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    response text NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: journal; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.journal (
    id integer NOT NULL,
    flow_id text NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    event text NOT NULL,
    actor text NOT NULL,
    at bigint NOT NULL,
    outcome text NOT NULL
);


--
-- Name: journal_id_seq; Type: SEQUENCE; Schema: regflow_v1; Owner: -
--

CREATE SEQUENCE regflow_v1.journal_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: journal_id_seq; Type: SEQUENCE OWNED BY; Schema: regflow_v1; Owner: -
--

ALTER SEQUENCE regflow_v1.journal_id_seq OWNED BY regflow_v1.journal.id;


--
-- Name: limit_hits; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.limit_hits (
    id integer NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    client text NOT NULL,
    at bigint NOT NULL,
    until bigint
);


--
-- Name: limit_hits_id_seq; Type: SEQUENCE; Schema: regflow_v1; Owner: -
--

CREATE SEQUENCE regflow_v1.limit_hits_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: limit_hits_id_seq; Type: SEQUENCE OWNED BY; Schema: regflow_v1; Owner: -
--

ALTER SEQUENCE regflow_v1.limit_hits_id_seq OWNED BY regflow_v1.limit_hits.id;


--
-- Name: logins; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.logins (
    id text NOT NULL,
    customer_id text NOT NULL,
    email text NOT NULL,
    email_key text NOT NULL,
    password_hash text NOT NULL,
    display_name text NOT NULL,
    role text NOT NULL,
    two_factor boolean NOT NULL,
    ready_at bigint NOT NULL,
    account text,
    created_at bigint NOT NULL
);


--
-- Name: outbox; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.outbox (
    id text NOT NULL,
    flow_id text,
    "to" text NOT NULL,
    message bytea NOT NULL,
    created_at bigint NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at bigint,
    sent_at bigint,
    last_error text
);


--
-- Name: regflow_meta; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.regflow_meta (
    key text NOT NULL,
    value text NOT NULL
);


--
-- Name: sessions; Type: TABLE; Schema: regflow_v1; Owner: -
--

CREATE TABLE regflow_v1.sessions (
    id text NOT NULL,
    login_id text NOT NULL,
    digest text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL
);


--
-- Name: journal id; Type: DEFAULT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.journal ALTER COLUMN id SET DEFAULT nextval('regflow_v1.journal_id_seq'::regclass);


--
-- Name: limit_hits id; Type: DEFAULT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.limit_hits ALTER COLUMN id SET DEFAULT nextval('regflow_v1.limit_hits_id_seq'::regclass);


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.accounts VALUES ('abcd8-01', '281234', 0);
INSERT INTO regflow_v1.accounts VALUES ('abcd8-02', '281234', 1);
INSERT INTO regflow_v1.accounts VALUES ('abcd8-03', '281234', 2);


--
-- Data for Name: codes; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.codes VALUES ('-r5R-pKDGqlZ5LgFDSpfmQ', 'poO3FUYQkmVkF7042d_V4A', 'registration', 'alice@example.jp', '13fc2d7681a93a1ebbf39693cd105faa2c862b1301d70969c273da1e7afab4b8', 1772443800000000, 1772442000000000, 0, 1772442000000000, false, 1);
INSERT INTO regflow_v1.codes VALUES ('KKfbHn-zJkaHBJwOna037g', 'O6VPGW4vgHgtwKOcm3RC3A', 'registration', 'bob@example.jp', '2266d3a2cca0ca67802a5800ad68ed0eee655b86a707aeaa5f041736bd5fd518', 1772444400000000, 1772442600000000, 0, NULL, false, 1);


--
-- Data for Name: customers; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.customers VALUES ('281234', '03-1234-5678', 3, false);


--
-- Data for Name: flows; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.flows VALUES ('poO3FUYQkmVkF7042d_V4A', 'registration', 1, 'ready', 'completed', '{"account":"abcd8-01","_lang":"ja","_messages":[],"email":"alice@example.jp","_email_key":"alice@example.jp","_sends":1,"_last_sent_at":"2026-03-02T09:00:00+00:00","login_id":"5OXDcODkWE21WE77Q72L-g","role":"admin","customer_id":"281234","ready_at":"2026-03-02T09:10:00Z","ready_at_local":"18:10"}', '[]', NULL, NULL, 1772442000000000, 1772442600000000, '8d01ecc808c95053e7bb3bbbc7d7cf5b5e8125d9b8c8086f2b912e892b4b1978', 4);
INSERT INTO regflow_v1.flows VALUES ('bI15ASN81addidOXEuPumA', 'sign_in', 1, 'signed_in', 'completed', '{"account":"abcd8-01","_lang":"ja","_messages":[],"_login_id":"5OXDcODkWE21WE77Q72L-g","_password_mark":"39a6df2ab528563a3d9320607598ad3f70e378cb0bba98dbfd6c0825d7ea7653","email":"alice@example.jp","_email_key":"alice@example.jp"}', '[]', NULL, NULL, 1772442600000000, 1772442600000000, '45a46d6dea750a8c572357f1dc69316af53c03449ebd37c74eed4d7dd4012163', 2);
INSERT INTO regflow_v1.flows VALUES ('O6VPGW4vgHgtwKOcm3RC3A', 'registration', 1, 'enter_code', 'active', '{"account":"abcd8-02","_lang":"ja","_messages":[],"email":"bob@example.jp","_email_key":"bob@example.jp","_sends":1,"_last_sent_at":"2026-03-02T09:10:00+00:00"}', '[["code_timeout",1772444400000000]]', 1772446200000000, 1772444400000000, 1772442600000000, 1772442600000000, '907f3e6fb9b60aa00db1a4c0d5d17ca5fe0932dc2723c671dad295d130f3a52a', 1);


--
-- Data for Name: idempotency_keys; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--



--
-- Data for Name: journal; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.journal VALUES (1, 'poO3FUYQkmVkF7042d_V4A', '', 'enter_email', 'start', 'user', 1772442000000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (2, 'poO3FUYQkmVkF7042d_V4A', 'enter_email', 'enter_code', 'submit', 'user', 1772442000000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (3, 'poO3FUYQkmVkF7042d_V4A', 'enter_code', 'details', 'submit', 'user', 1772442000000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (4, 'poO3FUYQkmVkF7042d_V4A', 'details', 'provisioning', 'submit', 'user', 1772442000000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (5, 'poO3FUYQkmVkF7042d_V4A', 'provisioning', 'ready', 'provisioned', 'timer', 1772442600000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (6, 'bI15ASN81addidOXEuPumA', '', 'credentials', 'start', 'user', 1772442600000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (7, 'bI15ASN81addidOXEuPumA', 'credentials', 'link_prompt', 'submit', 'user', 1772442600000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (8, 'bI15ASN81addidOXEuPumA', 'link_prompt', 'signed_in', 'submit', 'user', 1772442600000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (9, 'O6VPGW4vgHgtwKOcm3RC3A', '', 'enter_email', 'start', 'user', 1772442600000000, 'ok');
INSERT INTO regflow_v1.journal VALUES (10, 'O6VPGW4vgHgtwKOcm3RC3A', 'enter_email', 'enter_code', 'submit', 'user', 1772442600000000, 'ok');


--
-- Data for Name: limit_hits; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.limit_hits VALUES (1, 'code_mail', 'ae9ae04d606b4e8e9320bb1edc6b65fb', '', 1772442000000000, NULL);
INSERT INTO regflow_v1.limit_hits VALUES (2, 'code_mail', 'a3bd3ad8ce1e4eec7ddf183800644945', '', 1772442600000000, NULL);


--
-- Data for Name: logins; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.logins VALUES ('5OXDcODkWE21WE77Q72L-g', '281234', 'alice@example.jp', 'alice@example.jp', '$argon2id$v=19$m=19456,t=2,p=1$TsQ/CzBz8BXjngBJfflNWQ$wP4hWqLEKk0tSC8cINDCAJsLZ2Ymio9bWlQWXGy9leg', '山田 太郎', 'admin', false, 1772442600000000, 'abcd8-01', 1772442000000000);


--
-- Data for Name: outbox; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.outbox VALUES ('55f5f2e4d8fd44d086c362b85576701d', 'poO3FUYQkmVkF7042d_V4A', 'alice@example.jp', '\x', 1772442000000000, 'sent', 1, NULL, 1772442000000000, NULL);
INSERT INTO regflow_v1.outbox VALUES ('37b09f115bb14abb8f84c05b448ca805', 'O6VPGW4vgHgtwKOcm3RC3A', 'bob@example.jp', '\x', 1772442600000000, 'sent', 1, NULL, 1772442600000000, NULL);


--
-- Data for Name: regflow_meta; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.regflow_meta VALUES ('secret', 'dc8a4ff9ea504a49600ef498f341801ab9fd8171f930fcab8fb70e5b62a5a495');


--
-- Data for Name: sessions; Type: TABLE DATA; Schema: regflow_v1; Owner: -
--

INSERT INTO regflow_v1.sessions VALUES ('fTzvdUzV9egqQx39rbjAjw', '5OXDcODkWE21WE77Q72L-g', 'fe24dafa4a0181af0a7902c3ce5d5ebd7bdf155df500edf04faff3a2eb5ffd84', 1772442600000000, 1772485800000000);


--
-- Name: journal_id_seq; Type: SEQUENCE SET; Schema: regflow_v1; Owner: -
--

SELECT pg_catalog.setval('regflow_v1.journal_id_seq', 10, true);


--
-- Name: limit_hits_id_seq; Type: SEQUENCE SET; Schema: regflow_v1; Owner: -
--

SELECT pg_catalog.setval('regflow_v1.limit_hits_id_seq', 2, true);


--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (account);


--
-- Name: codes codes_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.codes
    ADD CONSTRAINT codes_pkey PRIMARY KEY (id);


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (customer_id);


--
-- Name: flows flows_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.flows
    ADD CONSTRAINT flows_pkey PRIMARY KEY (id);


--
-- Name: idempotency_keys idempotency_keys_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (flow_id, key);


--
-- Name: journal journal_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.journal
    ADD CONSTRAINT journal_pkey PRIMARY KEY (id);


--
-- Name: limit_hits limit_hits_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.limit_hits
    ADD CONSTRAINT limit_hits_pkey PRIMARY KEY (id);


--
-- Name: logins logins_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.logins
    ADD CONSTRAINT logins_pkey PRIMARY KEY (id);


--
-- Name: outbox outbox_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);


--
-- Name: regflow_meta regflow_meta_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.regflow_meta
    ADD CONSTRAINT regflow_meta_pkey PRIMARY KEY (key);


--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);


--
-- Name: accounts_customer_id; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX accounts_customer_id ON regflow_v1.accounts USING btree (customer_id);


--
-- Name: codes_created_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX codes_created_at ON regflow_v1.codes USING btree (created_at);


--
-- Name: codes_email_key; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX codes_email_key ON regflow_v1.codes USING btree (email_key);


--
-- Name: codes_flow_id_purpose; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX codes_flow_id_purpose ON regflow_v1.codes USING btree (flow_id, purpose);


--
-- Name: flows_next_due_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX flows_next_due_at ON regflow_v1.flows USING btree (next_due_at);


--
-- Name: flows_status_updated_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX flows_status_updated_at ON regflow_v1.flows USING btree (status, updated_at);


--
-- Name: idempotency_created_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX idempotency_created_at ON regflow_v1.idempotency_keys USING btree (created_at);


--
-- Name: journal_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX journal_at ON regflow_v1.journal USING btree (at);


--
-- Name: journal_flow_id; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX journal_flow_id ON regflow_v1.journal USING btree (flow_id);


--
-- Name: limit_hits_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX limit_hits_at ON regflow_v1.limit_hits USING btree (at);


--
-- Name: limit_hits_key_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX limit_hits_key_at ON regflow_v1.limit_hits USING btree (kind, subject, client, at);


--
-- Name: logins_account_unique; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE UNIQUE INDEX logins_account_unique ON regflow_v1.logins USING btree (account);


--
-- Name: logins_customer_id; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX logins_customer_id ON regflow_v1.logins USING btree (customer_id);


--
-- Name: logins_email_key_unique; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE UNIQUE INDEX logins_email_key_unique ON regflow_v1.logins USING btree (email_key);


--
-- Name: logins_one_admin; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE UNIQUE INDEX logins_one_admin ON regflow_v1.logins USING btree (customer_id) WHERE (role = 'admin'::text);


--
-- Name: outbox_created_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX outbox_created_at ON regflow_v1.outbox USING btree (created_at);


--
-- Name: outbox_status_due; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX outbox_status_due ON regflow_v1.outbox USING btree (status, next_attempt_at);


--
-- Name: sessions_digest_unique; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE UNIQUE INDEX sessions_digest_unique ON regflow_v1.sessions USING btree (digest);


--
-- Name: sessions_expires_at; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX sessions_expires_at ON regflow_v1.sessions USING btree (expires_at);


--
-- Name: sessions_login_id; Type: INDEX; Schema: regflow_v1; Owner: -
--

CREATE INDEX sessions_login_id ON regflow_v1.sessions USING btree (login_id);


--
-- Name: accounts accounts_customer_id_fkey; Type: FK CONSTRAINT; Schema: regflow_v1; Owner: -
--

ALTER TABLE ONLY regflow_v1.accounts
    ADD CONSTRAINT accounts_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES regflow_v1.customers(customer_id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--


