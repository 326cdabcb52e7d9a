-- The browse hierarchy (GALAXY.md §1.4) [reconstructed]: the deployed
-- instances of the browsable categories with their browse parent (the
-- container if any, else the area; 0: the Galaxy root), whether each is an
-- area, and its template chain (nearest template first, "|"-joined, at
-- most 10 levels).
-- Columns: gobject_id, tag_name, contained_name, parent_gobject_id,
-- is_area, category_id, area_gobject_id, hosted_by_gobject_id,
-- template_chain.
WITH template_chain AS (
    SELECT g.gobject_id AS instance_id, t.gobject_id, t.tag_name,
           t.derived_from_gobject_id AS next_id, 0 AS depth
    FROM dbo.gobject g
    JOIN dbo.gobject t ON t.gobject_id = g.derived_from_gobject_id
    WHERE g.is_template = 0 AND g.deployed_package_id <> 0
    UNION ALL
    SELECT tc.instance_id, t.gobject_id, t.tag_name, t.derived_from_gobject_id, tc.depth + 1
    FROM template_chain tc
    JOIN dbo.gobject t ON t.gobject_id = tc.next_id
    WHERE tc.next_id <> 0 AND tc.depth < 9
)
SELECT g.gobject_id,
       g.tag_name,
       g.contained_name,
       CASE WHEN g.contained_by_gobject_id <> 0 THEN g.contained_by_gobject_id
            ELSE g.area_gobject_id END                              AS parent_gobject_id,
       CAST(CASE WHEN td.category_id = 13 THEN 1 ELSE 0 END AS bit) AS is_area,
       td.category_id,
       g.area_gobject_id,
       g.hosted_by_gobject_id,
       STUFF((SELECT '|' + tc.tag_name FROM template_chain tc
              WHERE tc.instance_id = g.gobject_id ORDER BY tc.depth
              FOR XML PATH(''), TYPE).value('.', 'nvarchar(max)'), 1, 1, '') AS template_chain
FROM dbo.gobject g
JOIN dbo.template_definition td ON td.template_definition_id = g.template_definition_id
WHERE td.category_id IN (1, 3, 4, 10, 11, 13, 17, 24, 26)
  AND g.is_template = 0
  AND g.deployed_package_id <> 0
  AND g.namespace_id = 1
ORDER BY parent_gobject_id, g.tag_name
OPTION (MAXRECURSION 10);
