-- The seed's employee tables, seed employees, and the table the hourly summaries land in.
-- Safe to run again: every statement is IF NOT EXISTS / ON CONFLICT DO NOTHING.
\connect streaming_db

CREATE TABLE IF NOT EXISTS employees (
    id SERIAL PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(100) UNIQUE NOT NULL,
    department VARCHAR(50) NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS employee_activities (
    id SERIAL PRIMARY KEY,
    employee_id INTEGER REFERENCES employees(id),
    activity_type VARCHAR(50) NOT NULL,
    page_url VARCHAR(200),
    duration_seconds INTEGER,
    ip_address INET,
    user_agent TEXT,
    activity_timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- DEFAULT: before images of UPDATE/DELETE carry only the primary key (as in the seed).
-- Use FULL to get whole before images in change events.
ALTER TABLE employees REPLICA IDENTITY DEFAULT;
ALTER TABLE employee_activities REPLICA IDENTITY DEFAULT;

INSERT INTO employees (name, email, department) VALUES
    ('Alice Johnson',   'alice.johnson@company.com',   'Engineering'),
    ('Bob Smith',       'bob.smith@company.com',       'Engineering'),
    ('Carol Williams',  'carol.williams@company.com',  'Marketing'),
    ('David Brown',     'david.brown@company.com',     'Sales'),
    ('Eva Martinez',    'eva.martinez@company.com',    'HR'),
    ('Frank Lee',       'frank.lee@company.com',       'Finance'),
    ('Grace Kim',       'grace.kim@company.com',       'Engineering'),
    ('Henry Davis',     'henry.davis@company.com',     'Marketing'),
    ('Irene Chen',      'irene.chen@company.com',      'Sales'),
    ('Jack Wilson',     'jack.wilson@company.com',     'Finance')
ON CONFLICT (email) DO NOTHING;

-- Where the pipeline's hourly summaries land (sink `postgres`, mode upsert on the primary key):
-- re-delivered summaries overwrite the same row instead of adding one.
CREATE TABLE IF NOT EXISTS employee_activity_summaries (
    employee_id INTEGER NOT NULL,
    activity_type VARCHAR(50) NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    activity_count BIGINT NOT NULL,
    total_duration BIGINT,
    avg_duration DOUBLE PRECISION,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (employee_id, activity_type, window_start)
);

-- The daily per-department report (pipelines/daily-department-report.yaml), written at 08:00
-- Berlin time for the day before; a re-run of a day overwrites its rows.
CREATE TABLE IF NOT EXISTS department_daily_report (
    day DATE NOT NULL,
    department VARCHAR(50) NOT NULL,
    activities BIGINT NOT NULL,
    employees BIGINT NOT NULL,
    downloads BIGINT NOT NULL,
    total_duration BIGINT NOT NULL,
    avg_duration DOUBLE PRECISION,
    reported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (day, department)
);
