<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of a JSON http adapter's import transform: a service
     shaped like the Google People API (docs/operations.md, "Connecting a
     JSON REST service with OAuth 2.0").

     Input:  the pages of the list the adapter's URL names (connections, or
             a directory listing's people), as xdmsd gives them to every
             JSON import: <array xmlns="http://www.w3.org/2005/xpath-functions">
             with one <map> per page. A Person has names[] (displayName,
             givenName, familyName), emailAddresses[] and phoneNumbers[]
             (value, type), addresses[] (formattedValue, type),
             organizations[] (name, title), birthdays[] (date: year, month,
             day), photos[] (url); a deleted one (in a sync) has
             metadata.deleted true.
     Output: <pcc> with one person-details: the person whose email address
             is the request's <remote-user> (any letter case), or, without
             a remote user, the first person. No such person gives a <pcc>
             without person-details: after a sync token, nothing changed for
             this user; in a full sync, the user is not there (404). -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:j="http://www.w3.org/2005/xpath-functions"
                xmlns="urn:oma:xml:cab:pcc"
                exclude-result-prefixes="j">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:variable name="lower" select="'abcdefghijklmnopqrstuvwxyz'"/>
  <xsl:variable name="upper" select="'ABCDEFGHIJKLMNOPQRSTUVWXYZ'"/>
  <xsl:variable name="me" select="translate(normalize-space($remote-user), $upper, $lower)"/>
  <xsl:variable name="people"
                select="/j:array/j:map/j:array[@key = 'connections' or @key = 'people']/j:map
                        [not(j:map[@key = 'metadata']/j:boolean[@key = 'deleted'] = 'true')]"/>

  <xsl:template match="/">
    <xsl:if test="not(j:array/j:map)">
      <xsl:message terminate="yes">the 3rd party did not send JSON pages</xsl:message>
    </xsl:if>
    <pcc pcc-type="individual">
      <xsl:choose>
        <xsl:when test="$me != ''">
          <xsl:apply-templates select="$people[j:array[@key = 'emailAddresses']/j:map/j:string[@key = 'value']
                                       [translate(normalize-space(.), $upper, $lower) = $me]][1]"/>
        </xsl:when>
        <xsl:otherwise><xsl:apply-templates select="$people[1]"/></xsl:otherwise>
      </xsl:choose>
    </pcc>
  </xsl:template>

  <!-- People API types to PCC ones. -->
  <xsl:template name="tel-type">
    <xsl:param name="t"/>
    <xsl:choose>
      <xsl:when test="$t = 'mobile'">Mobile</xsl:when>
      <xsl:when test="$t = 'work' or $t = 'workMobile'">Work</xsl:when>
      <xsl:when test="$t = 'home'">Home</xsl:when>
      <xsl:when test="$t = 'homeFax' or $t = 'workFax' or $t = 'otherFax'">Fax</xsl:when>
      <xsl:otherwise>Other</xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="j:map">
    <xsl:variable name="name" select="j:array[@key = 'names']/j:map[1]"/>
    <xsl:variable name="tels" select="j:array[@key = 'phoneNumbers']/j:map[j:string[@key = 'value'] != '']"/>
    <xsl:variable name="mails" select="j:array[@key = 'emailAddresses']/j:map[j:string[@key = 'value'] != '']"/>
    <xsl:variable name="addrs" select="j:array[@key = 'addresses']/j:map[j:string[@key = 'formattedValue'] != '']"/>
    <xsl:variable name="orgs" select="j:array[@key = 'organizations']/j:map"/>
    <xsl:variable name="bday" select="j:array[@key = 'birthdays']/j:map/j:map[@key = 'date']
                                      [j:number[@key = 'year'] and j:number[@key = 'month'] and j:number[@key = 'day']][1]"/>
    <xsl:variable name="photo" select="j:array[@key = 'photos']/j:map/j:string[@key = 'url'][. != ''][1]"/>
    <person-details>
      <xsl:if test="$name">
        <name>
          <name-entry pref="1">
            <xsl:for-each select="$name/j:string[@key = 'displayName']"><display-name><xsl:value-of select="."/></display-name></xsl:for-each>
            <xsl:for-each select="$name/j:string[@key = 'givenName']"><given><xsl:value-of select="."/></given></xsl:for-each>
            <xsl:for-each select="$name/j:string[@key = 'middleName']"><middle><xsl:value-of select="."/></middle></xsl:for-each>
            <xsl:for-each select="$name/j:string[@key = 'familyName']"><family><xsl:value-of select="."/></family></xsl:for-each>
          </name-entry>
        </name>
      </xsl:if>
      <xsl:if test="$tels or $mails">
        <comm-addr>
          <xsl:for-each select="$tels">
            <tel pref="{position()}">
              <xsl:attribute name="tel-type">
                <xsl:call-template name="tel-type"><xsl:with-param name="t" select="j:string[@key = 'type']"/></xsl:call-template>
              </xsl:attribute>
              <!-- canonicalForm is E.164 when the service knows it -->
              <tel-nb><tel-string>tel:<xsl:choose>
                <xsl:when test="j:string[@key = 'canonicalForm'] != ''"><xsl:value-of select="normalize-space(j:string[@key = 'canonicalForm'])"/></xsl:when>
                <xsl:otherwise><xsl:value-of select="translate(normalize-space(j:string[@key = 'value']), ' ()', '')"/></xsl:otherwise>
              </xsl:choose></tel-string></tel-nb>
            </tel>
          </xsl:for-each>
          <xsl:for-each select="$mails">
            <uri-entry pref="{position()}" addr-uri-type="Email">
              <addr-uri>mailto:<xsl:value-of select="normalize-space(j:string[@key = 'value'])"/></addr-uri>
            </uri-entry>
          </xsl:for-each>
        </comm-addr>
      </xsl:if>
      <xsl:if test="$addrs">
        <address>
          <xsl:for-each select="$addrs">
            <address-entry pref="{position()}">
              <xsl:attribute name="address-type">
                <xsl:choose>
                  <xsl:when test="j:string[@key = 'type'] = 'home'">Home</xsl:when>
                  <xsl:when test="j:string[@key = 'type'] = 'work'">Work</xsl:when>
                  <xsl:otherwise>Other</xsl:otherwise>
                </xsl:choose>
              </xsl:attribute>
              <address-data><addr-string><xsl:value-of select="normalize-space(j:string[@key = 'formattedValue'])"/></addr-string></address-data>
            </address-entry>
          </xsl:for-each>
        </address>
      </xsl:if>
      <xsl:if test="$bday">
        <birth><birth-date><date>
          <xsl:value-of select="format-number($bday/j:number[@key = 'year'], '0000')"/>-<xsl:value-of
            select="format-number($bday/j:number[@key = 'month'], '00')"/>-<xsl:value-of
            select="format-number($bday/j:number[@key = 'day'], '00')"/>
        </date></birth-date></birth>
      </xsl:if>
      <xsl:if test="$orgs/j:string[@key = 'name' or @key = 'title']">
        <career>
          <xsl:for-each select="$orgs/j:string[@key = 'name']"><employer><xsl:value-of select="."/></employer></xsl:for-each>
          <xsl:for-each select="$orgs/j:string[@key = 'title']"><duty><xsl:value-of select="."/></duty></xsl:for-each>
        </career>
      </xsl:if>
      <xsl:if test="$photo">
        <media-list>
          <media-entry pref="1">
            <media><media-url><xsl:value-of select="normalize-space($photo)"/></media-url></media>
            <label>photo</label>
          </media-entry>
        </media-list>
      </xsl:if>
    </person-details>
  </xsl:template>
</xsl:stylesheet>
