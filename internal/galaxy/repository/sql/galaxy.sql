-- The deploy probe (GALAXY.md §1.6), polled every galaxy_poll: the Galaxy
-- name (the database is named after the Galaxy) and the time of the last
-- deploy. A change of time_of_last_deploy means a deploy: the model is
-- read again.
-- Columns: galaxy_name, time_of_last_deploy.
SELECT TOP (1) DB_NAME() AS galaxy_name, g.time_of_last_deploy
FROM dbo.galaxy g;
