-- A nullable session's values may be null (a missing reading). Samples keep their float64
-- layout: a null is stored as NaN, which no other value can be (frames refuse NaN from
-- sessions that are not nullable, and infinities from all), and read back as null.
ALTER TABLE sessions ADD COLUMN nullable boolean NOT NULL DEFAULT false;
