"""What a pull request sees: GitHub's limits and the comments' markers (github), posting a comment
edited by id (pr_comment: the standard library only), and the review environment's comment
(review_comment)."""
