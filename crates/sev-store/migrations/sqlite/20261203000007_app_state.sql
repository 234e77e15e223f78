-- Small shared facts one instance computes and every instance shows (the subscription
-- manager's report, for instance), as JSON.
create table app_state (
    name       text primary key not null,
    value      text not null,
    updated_at text not null
);
